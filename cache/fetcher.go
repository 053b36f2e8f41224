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

// WholeBlob is what a Fetcher's FetchRange returns, as its error, when the
// source answered a range request with the whole blob from its first byte:
// a pull-through mirror does so for a blob it has not cached yet. The cache
// then lands every chunk it still lacks from Body, so the answer is used
// instead of asked for again, and closes Body. Any other caller of
// FetchRange that receives it must close Body.
type WholeBlob struct {
	Body io.ReadCloser
}

func (w *WholeBlob) Error() string { return "the source answered with the whole blob" }
