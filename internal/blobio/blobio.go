// Package blobio holds the two seams blob bytes flow through: Fetcher,
// where the cache gets bytes it does not have (the registry client
// implements it), and ReaderAt, a context-aware ReadAt that the cache's
// readers implement and the filesystem and the layer formats read
// through. It is a leaf: interfaces and one error type, no logic.
package blobio

import (
	"context"
	"io"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Fetcher fetches blob bytes from where they live. The registry client
// implements it; the cache never learns more about registries.
type Fetcher interface {
	// Fetch returns the whole blob.
	Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error)

	// FetchRange returns exactly length bytes of the blob from offset off,
	// or a *WholeBlob error when the source answered with the whole blob.
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

// ReaderAt is random access to a blob's bytes under a context. ReadAt
// follows io.ReaderAt: it returns len(p) bytes, or fewer together with an
// error (io.EOF at the end of the blob).
type ReaderAt interface {
	ReadAt(ctx context.Context, p []byte, off int64) (int, error)
}

// ReaderAtFunc adapts a function to a ReaderAt.
type ReaderAtFunc func(ctx context.Context, p []byte, off int64) (int, error)

// ReadAt calls f.
func (f ReaderAtFunc) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	return f(ctx, p, off)
}

// ContextReader returns r, stopped with ctx's error once ctx is done, so
// that a cancelled copy or hash does not read on.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
