package fetch

import (
	"context"
	"encoding/json"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache"
)

// MaxMetadataSize bounds indexes, manifests and configs; the cache, which
// reads them back, sets it.
const MaxMetadataSize = cache.MaxMetadataSize

// Provider reads the bytes of a small metadata blob that an earlier handler
// stored. The cache implements it.
type Provider interface {
	ReadMetadata(ctx context.Context, desc ocispec.Descriptor) ([]byte, error)
}

// ChildrenHandler returns a handler that decodes indexes and manifests read
// from provider and returns what they point at. Other descriptors have no
// children.
func ChildrenHandler(provider Provider) HandlerFunc {
	return func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		kind := KindOf(desc)
		if kind != KindIndex && kind != KindManifest {
			return nil, nil
		}
		data, err := provider.ReadMetadata(ctx, desc)
		if err != nil {
			return nil, err
		}
		return Children(desc, data)
	}
}

// Children decodes an index or manifest and returns the descriptors it
// points at: for an index its manifests, for a manifest its config followed
// by its layers.
func Children(desc ocispec.Descriptor, data []byte) ([]ocispec.Descriptor, error) {
	switch KindOf(desc) {
	case KindIndex:
		var index ocispec.Index
		if err := json.Unmarshal(data, &index); err != nil {
			return nil, fmt.Errorf("decode index %s: %w", desc.Digest, err)
		}
		return index.Manifests, nil
	case KindManifest:
		var manifest ocispec.Manifest
		if err := json.Unmarshal(data, &manifest); err != nil {
			return nil, fmt.Errorf("decode manifest %s: %w", desc.Digest, err)
		}
		if manifest.Config.Digest == "" {
			return nil, fmt.Errorf("decode manifest %s: no config", desc.Digest)
		}
		return append([]ocispec.Descriptor{manifest.Config}, manifest.Layers...), nil
	default:
		return nil, nil
	}
}
