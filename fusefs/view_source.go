package fusefs

import (
	"context"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache/layerview"
)

// LayerFiles opens the files inside layers for the rootfs/ and layers/<n>/
// views. cmd wires it to the cache and cache/layerview, so the filesystem
// knows nothing of registries or of layer formats beyond the index model.
type LayerFiles interface {
	// Layer returns the file index and content of the layer desc. The
	// first call for a layer may build its index, fetching the layer; calls
	// for one layer share that work, and calls for other layers are not
	// held up by it. ctx bounds only the caller's wait, not the build.
	// The Layer's ReadFile serves only bytes its format lets it verify.
	Layer(ctx context.Context, desc ocispec.Descriptor) (layerview.Layer, error)
}
