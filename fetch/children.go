package fetch

import (
	"context"
	"encoding/json"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/oci"
)

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
		kind := oci.KindOf(desc)
		if kind != oci.KindIndex && kind != oci.KindManifest {
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
// by its layers. Each of them has passed ValidateDescriptor; the first that
// does not fails the whole decode with an error naming the parent and the
// child, such as
//
//	manifest sha256:…: layers[2]: invalid digest "sha256:../../x": …
func Children(desc ocispec.Descriptor, data []byte) ([]ocispec.Descriptor, error) {
	kind := oci.KindOf(desc)
	var children []ocispec.Descriptor
	var role func(i int) string
	switch kind {
	case oci.KindIndex:
		var index ocispec.Index
		if err := json.Unmarshal(data, &index); err != nil {
			return nil, fmt.Errorf("decode index %s: %w", oci.QuoteDigest(desc.Digest), err)
		}
		children = index.Manifests
		role = func(i int) string { return fmt.Sprintf("manifests[%d]", i) }
	case oci.KindManifest:
		var manifest ocispec.Manifest
		if err := json.Unmarshal(data, &manifest); err != nil {
			return nil, fmt.Errorf("decode manifest %s: %w", oci.QuoteDigest(desc.Digest), err)
		}
		if manifest.Config.Digest == "" {
			return nil, fmt.Errorf("decode manifest %s: no config", oci.QuoteDigest(desc.Digest))
		}
		children = append([]ocispec.Descriptor{manifest.Config}, manifest.Layers...)
		role = func(i int) string {
			if i == 0 {
				return "config"
			}
			return fmt.Sprintf("layers[%d]", i-1)
		}
	default:
		return nil, nil
	}
	for i, c := range children {
		if err := oci.CheckDescriptor(c); err != nil {
			return nil, fmt.Errorf("%s %s: %s: %w", kind, oci.QuoteDigest(desc.Digest), role(i), err)
		}
	}
	return children, nil
}
