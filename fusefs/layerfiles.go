package fusefs

import (
	"context"
	"os"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/layer"
)

// LayerFiles opens the files inside layers for the rootfs/ and layers/<n>/
// views. internal/imagemount wires it to the cache and internal/layer, so
// the filesystem knows nothing of registries or of layer formats beyond
// the index model.
type LayerFiles interface {
	// Layer returns the file index and content of the layer desc. The
	// first call for a layer may build its index, fetching the layer; calls
	// for one layer share that work, and calls for other layers are not
	// held up by it. ctx bounds only the caller's wait, not the build.
	// The Layer's ReadFile serves only bytes its format lets it verify.
	// A layer whose index cannot be completed is an error (wrapping
	// layer.ErrBroken when its stream breaks), never a Layer that lists
	// the entries before the break: every view it is part of then
	// answers EIO.
	Layer(ctx context.Context, desc ocispec.Descriptor) (layer.Layer, error)
}

// FileCopies keeps whole local copies of the views' regular files, made
// only from bytes their layer verified, so that a file read once is
// handed to the kernel (FUSE passthrough) on later opens. A LayerFiles may
// implement it.
type FileCopies interface {
	// OpenCopy opens the copy of file i of the layer desc, if there is a
	// complete one of size bytes.
	OpenCopy(desc ocispec.Descriptor, i int, size int64) (*os.File, bool)
	// NewCopy starts a copy of file i of the layer desc, or returns nil
	// when the file's bytes may not be copied (they are not verified as
	// they are served) or the copy cannot be made.
	NewCopy(desc ocispec.Descriptor, i int, size int64) FileCopy
}

// FileCopy is a copy being written from the bytes of a file's reads.
type FileCopy interface {
	WriteAt(p []byte, off int64) (int, error)
	// Commit makes the copy, whose every byte has been written, available
	// to OpenCopy.
	Commit() error
	// Abort drops the copy.
	Abort()
}
