package cache

import (
	"context"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// prefetchParallel bounds how many blobs are prefetched at once. Each
// prefetch keeps one request in flight, so on-demand reads always find
// most connections free: they take priority by leaving prefetch a minority.
const prefetchParallel = 2

// Prefetch fetches the rest of desc in the background order of a sequential
// reader, one run of chunks at a time, and returns when the blob is
// committed, ctx is done, or a fetch fails. Chunks that readers already
// fetched, or are fetching, are skipped.
func (s *Store) Prefetch(ctx context.Context, desc ocispec.Descriptor, f Fetcher) error {
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
	b.mu.Lock()
	mismatches := b.mismatches
	b.mu.Unlock()
	step := prefetchPlan.runChunks * s.opts.ChunkSize
	for off := int64(0); off < desc.Size; off += step {
		r := Range{off, min(off+step, desc.Size)}
		b.mu.Lock()
		err := b.scheduleLocked(r, prefetchPlan)
		waits := b.flightsLocked(r)
		b.mu.Unlock()
		if err == nil {
			err = awaitLanded(ctx, waits, nil)
		}
		if err != nil {
			return err
		}
	}
	return b.waitCommit(ctx, mismatches)
}
