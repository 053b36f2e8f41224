package fetch

import (
	"context"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/blobio"
)

// Store is what a walk needs of the cache: to know what it holds, to store
// blobs verified, to read metadata back, and to record where blobs came
// from. *cache.Store implements it.
type Store interface {
	Provider
	// Exists reports whether desc is stored whole and verified.
	Exists(desc ocispec.Descriptor) bool
	// Fill stores a layer from src with range requests, resuming what is
	// there, reporting bytes stored to progress.
	Fill(ctx context.Context, desc ocispec.Descriptor, src blobio.Fetcher, progress func(n int64)) error
	// Ingest stores a small blob streamed whole from r.
	Ingest(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error
	// AddSource records that d can be fetched from repository.
	AddSource(d digest.Digest, repository string) error
}
