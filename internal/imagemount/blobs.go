package imagemount

import (
	"context"
	"fmt"
	"io"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/fusefs"
	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/errdefs"
)

// blobSource serves the filesystem's blobs from the cache, fetching what is
// missing through fetcher (nil when offline). The filesystem reads the cache
// only through it; the cache reaches back only through Store.OnMismatch,
// which Start points at the server's InvalidateBlob.
type blobSource struct {
	store   *cache.Store
	fetcher blobio.Fetcher
}

var (
	_ fusefs.Blobs         = blobSource{}
	_ fusefs.LendingReader = (*cache.Reader)(nil)
)

func (b blobSource) Open(desc ocispec.Descriptor) (fusefs.BlobReader, error) {
	return b.store.NewReader(desc, b.fetcher)
}

func (b blobSource) CompletePath(desc ocispec.Descriptor) (string, bool) {
	return b.store.CompletePath(desc)
}

// offlineFetcher stands in for the registry of a mount without one:
// everything not cached fails at once with a message naming the blob.
type offlineFetcher struct{}

func (offlineFetcher) Fetch(_ context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	return nil, fmt.Errorf("%w: %s", errdefs.ErrOffline, desc.Digest)
}

func (offlineFetcher) FetchRange(_ context.Context, desc ocispec.Descriptor, _, _ int64) (io.ReadCloser, error) {
	return nil, fmt.Errorf("%w: %s", errdefs.ErrOffline, desc.Digest)
}
