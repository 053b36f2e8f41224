package cache

import (
	"context"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/blobio"
)

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
