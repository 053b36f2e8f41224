package imagemount

import (
	"bytes"
	"context"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opencontainers/go-digest"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/fusefs"
	"github.com/imgfs/imgfs/internal/oci"
)

// withOCIView returns img as OCI-only tools can read it, when the registry
// served Docker media types: every Docker schema2 manifest is replaced by
// its OCI twin, and a Docker manifest list by an OCI index of the twins.
// The twins are blobs of their own, ingested verified into the cache and
// listed in blobs/ next to the registry's originals, which keep their
// digests; fusefs names the registry's root <name>-docker in index.json.
// An image already in OCI media types comes back unchanged. A manifest
// with a layer type OCI has no name for stays as the registry served it.
func withOCIView(ctx context.Context, store *cache.Store, img fusefs.Image) (fusefs.Image, error) {
	twins := map[digest.Digest]ocispec.Descriptor{}
	var added []ocispec.Descriptor // in platform order, so the tree is built the same way every time
	platforms := make([]fusefs.PlatformImage, len(img.Platforms))
	copy(platforms, img.Platforms)
	for i, p := range platforms {
		if p.Manifest.MediaType != oci.DockerManifest {
			continue
		}
		data, err := store.ReadMetadata(ctx, p.Manifest)
		if err != nil {
			return img, err
		}
		twinData, err := oci.TwinManifest(data)
		if err != nil {
			continue // served as the registry has it: see the doc comment
		}
		twin, err := ingestTwin(ctx, store, ocispec.MediaTypeImageManifest, twinData)
		if err != nil {
			return img, err
		}
		twin.Platform, twin.Annotations = p.Manifest.Platform, p.Manifest.Annotations
		twins[p.Manifest.Digest] = twin
		added = append(added, twin)
		p.Manifest = twin
		p.Config.MediaType, _ = oci.TwinMediaType(p.Config, true)
		p.Layers = append([]ocispec.Descriptor(nil), p.Layers...)
		for j := range p.Layers {
			p.Layers[j].MediaType, _ = oci.TwinMediaType(p.Layers[j], false)
		}
		platforms[i] = p
	}
	if len(twins) == 0 {
		return img, nil
	}

	out := img
	out.Platforms = platforms
	out.Blobs = append(append([]ocispec.Descriptor(nil), img.Blobs...), added...)
	switch img.Root.MediaType {
	case oci.DockerManifest:
		out.Root = twins[img.Root.Digest]
	case oci.DockerManifestList:
		data, err := store.ReadMetadata(ctx, img.Root)
		if err != nil {
			return img, err
		}
		twinData, err := oci.TwinIndex(data, twins)
		if err != nil {
			return img, err
		}
		if out.Root, err = ingestTwin(ctx, store, ocispec.MediaTypeImageIndex, twinData); err != nil {
			return img, err
		}
		out.Blobs = append(out.Blobs, out.Root)
	default:
		return out, nil // an OCI index listing Docker manifests: its entries' twins are named per platform
	}
	registryRoot := img.Root
	out.RegistryRoot = &registryRoot
	return out, nil
}

// ingestTwin stores a converted manifest or index in the cache under its
// own digest, verified like any blob, and returns its descriptor.
func ingestTwin(ctx context.Context, store *cache.Store, mediaType string, data []byte) (ocispec.Descriptor, error) {
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	if store.Exists(desc) {
		return desc, nil
	}
	if err := store.Ingest(ctx, desc, bytes.NewReader(data)); err != nil {
		return desc, fmt.Errorf("store the OCI view of a Docker manifest: %w", err)
	}
	return desc, nil
}
