package cache

import (
	"context"
	"errors"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache/internal/blobfsm"
	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/byterange"
	"github.com/imgfs/imgfs/internal/errdefs"
)

// Fill fetches every missing byte of desc with parallel range requests and
// returns once the blob is verified and committed, or with an error: a
// failed fetch, a digest mismatch, a failed commit (which the next open or
// Fill retries). Bytes that lazy reads already fetched are kept, so a fill
// after a partial read only fetches the rest. progress, if not nil, is
// told of bytes as they become present, starting with those present at
// the start.
func (s *Store) Fill(ctx context.Context, desc ocispec.Descriptor, f blobio.Fetcher, progress func(n int64)) error {
	b, err := s.OpenBlob(desc, f)
	if err != nil {
		return err
	}
	defer b.Close()
	err = b.fill(ctx, s.bulkPlan(true), progress)
	if errors.Is(err, errdefs.ErrRangeUnsupported) && f != nil {
		return s.fillWhole(ctx, b, f, progress)
	}
	return err
}

// fillWhole streams the blob in one request, for sources without ranges.
func (s *Store) fillWhole(ctx context.Context, b *Blob, f blobio.Fetcher, progress func(int64)) error {
	rc, err := f.Fetch(ctx, b.desc)
	if err != nil {
		return err
	}
	defer rc.Close()
	if progress == nil {
		progress = func(int64) {}
	}
	if err := s.Ingest(ctx, b.desc, &countingReader{r: rc, progress: progress}); err != nil {
		return err
	}
	b.mu.Lock()
	b.adoptLocked()
	b.mu.Unlock()
	return nil
}

// fill keeps a bounded number of runs in flight, scheduling more as they
// land, until the blob is committed. It gives up at the first failed
// fetch, at a mismatch, or when the commit fails; a stalled fetch fails by
// its idle timeout, so this never hangs.
func (b *Blob) fill(ctx context.Context, plan blobfsm.Plan, progress func(int64)) error {
	if progress == nil {
		progress = func(int64) {}
	}
	b.mu.Lock()
	b.applyLocked(b.m.RetryCommit())
	gen, failures := b.m.Gen(), b.m.Failures()
	var reported int64
	for {
		var err error
		switch m := b.m; {
		case m.Phase() == blobfsm.PhaseComplete:
			b.mu.Unlock()
			progress(b.desc.Size - reported)
			return nil
		case m.Gen() != gen:
			err = errdefs.ErrDigestMismatch
		case m.Phase() == blobfsm.PhaseCommitFailed:
			err = m.CommitErr()
		case m.Failures() != failures:
			err = m.LastErr()
		case b.store.closing():
			err = ErrClosed
		default:
			err = b.wantLocked(byterange.Range{Start: 0, End: b.desc.Size}, plan)
		}
		if err != nil {
			b.mu.Unlock()
			return fmt.Errorf("fill %s: %w", b.desc.Digest, err)
		}
		if b.m.Phase() == blobfsm.PhaseComplete {
			continue // adopted the blob another process committed
		}
		delta := b.m.PresentBytes() - reported
		reported += delta
		changed := b.changed
		b.mu.Unlock()
		if delta > 0 {
			progress(delta)
		}
		select {
		case <-changed:
		case <-b.store.life.Done():
		case <-ctx.Done():
			return fmt.Errorf("fill %s: %w", b.desc.Digest, ctx.Err())
		}
		b.mu.Lock()
	}
}

// prefetchParallel bounds how many blobs are prefetched at once. Each
// prefetch keeps one request in flight, so on-demand reads always find
// most connections free: they take priority by leaving prefetch a minority.
const prefetchParallel = 2

// Prefetch fetches the rest of desc in the order of a sequential reader,
// one run of chunks at a time, and returns when the blob is committed, ctx
// is done, a fetch fails, or the commit fails. Chunks that readers already
// fetched, or are fetching, are skipped.
func (s *Store) Prefetch(ctx context.Context, desc ocispec.Descriptor, f blobio.Fetcher) error {
	select {
	case s.prefetching <- struct{}{}:
		defer func() { <-s.prefetching }()
	case <-ctx.Done():
		return ctx.Err()
	}
	b, err := s.OpenBlob(desc, f)
	if err != nil {
		return err
	}
	defer b.Close()
	return b.fill(ctx, prefetchPlan, nil)
}
