package cache

import (
	"context"
	"io"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Fetcher is where the cache gets blob bytes it does not have. The registry
// client implements it; the cache never learns more about registries.
type Fetcher interface {
	// Fetch returns the whole blob.
	Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error)

	// FetchRange returns exactly length bytes of the blob from offset off.
	FetchRange(ctx context.Context, desc ocispec.Descriptor, off, length int64) (io.ReadCloser, error)
}
