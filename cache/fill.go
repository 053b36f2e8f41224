package cache

import (
	"context"
	"errors"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Fill fetches every missing byte of desc with parallel range requests and
// returns once the blob is verified and committed. Bytes that lazy reads
// already fetched are kept, so a fill after a partial read only fetches the
// rest. progress, if not nil, is told of each chunk as it lands, and of the
// bytes already present at the start.
func (s *Store) Fill(ctx context.Context, desc ocispec.Descriptor, f Fetcher, progress func(n int64)) error {
	if progress == nil {
		progress = func(int64) {}
	}
	b, err := s.OpenBlob(desc, f)
	if err != nil {
		return err
	}
	defer b.Close()

	b.mu.Lock()
	if b.complete {
		b.mu.Unlock()
		return nil
	}
	mismatches := b.mismatches
	present := b.present.Size()
	err = b.scheduleLocked(Range{0, desc.Size}, fillPlan)
	waits := b.flightsLocked(Range{0, desc.Size})
	b.mu.Unlock()
	if err != nil {
		return err
	}
	progress(present)
	err = awaitLanded(ctx, waits, func(fl *flight) { progress(fl.n) })
	if errors.Is(err, ErrRangeUnsupported) {
		return s.fillWhole(ctx, b, f, progress)
	}
	if err != nil {
		return err
	}
	return b.waitCommit(ctx, mismatches)
}

// fillWhole streams the blob in one request, for sources without ranges.
func (s *Store) fillWhole(ctx context.Context, b *Blob, f Fetcher, progress func(int64)) error {
	rc, err := f.Fetch(ctx, b.desc)
	if err != nil {
		return err
	}
	defer rc.Close()
	return s.Ingest(ctx, b.desc, &countingReader{r: rc, progress: progress})
}

// waitCommit waits until the blob is committed, or fails verification for
// the first time since mismatches were counted.
func (b *Blob) waitCommit(ctx context.Context, mismatches int) error {
	for {
		b.mu.Lock()
		complete, failed, changed := b.complete, b.mismatches > mismatches, b.changed
		b.mu.Unlock()
		switch {
		case complete:
			return nil
		case failed:
			return fmt.Errorf("blob %s: %w", b.desc.Digest, ErrDigestMismatch)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// awaitLanded waits for flights in order, calling landed (if not nil) for
// each that lands, until one fails or ctx is done. Fetches bound their own
// time with the idle timeout, so this does not hang.
func awaitLanded(ctx context.Context, flights []*flight, landed func(*flight)) error {
	for _, fl := range flights {
		select {
		case <-fl.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if fl.err != nil {
			return fl.err
		}
		if landed != nil {
			landed(fl)
		}
	}
	return nil
}
