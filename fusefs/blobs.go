package fusefs

import (
	"context"

	"github.com/imgfs/imgfs/internal/blobio"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Blobs opens blob content for reading. internal/imagemount implements it
// over the cache, so the filesystem never learns where the bytes come
// from.
type Blobs interface {
	// Open returns a reader for one open file handle. Each handle gets its
	// own reader so that access patterns (sequential or random) are tracked
	// per handle.
	Open(desc ocispec.Descriptor) (BlobReader, error)

	// CompletePath returns the path of the verified, complete blob file, if
	// the cache holds one. Such blobs can be served by FUSE passthrough.
	CompletePath(desc ocispec.Descriptor) (string, bool)
}

// BlobReader reads one blob on behalf of one open file handle.
type BlobReader interface {
	// ReadAt returns len(p) bytes, or fewer only at the end of the blob;
	// any other shortfall is an error, because a short read mid-file
	// truncates the file in the kernel.
	blobio.ReaderAt
	Close() error
}

// A LendingReader can answer a read with bytes it lends instead of
// copying them into p: the mount writes the slices to the kernel as they
// are and calls giveBack once the reply is sent. A read that does not
// lend returns nil slices and fills p as ReadAt does.
type LendingReader interface {
	BlobReader
	ReadLend(ctx context.Context, p []byte, off int64) (lent [][]byte, giveBack func(), n int, err error)
}
