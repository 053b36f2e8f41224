package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/fetch/mediatype"
	"github.com/imgfs/imgfs/fusefs"
)

// Docker layer media types the OCI view translates, besides the two
// mediatype names. The uncompressed and zstd ones are moby's; the
// uncompressed foreign one is containers/image's.
const (
	dockerLayerTar        = "application/vnd.docker.image.rootfs.diff.tar"
	dockerLayerZstd       = "application/vnd.docker.image.rootfs.diff.tar.zstd"
	dockerForeignLayerTar = "application/vnd.docker.image.rootfs.foreign.diff.tar"
)

// The OCI non-distributable layer types. image-spec deprecates them for
// new images, but they are what a foreign Docker layer already is, and
// what skopeo writes for one.
const (
	ociNonDistributableLayer     = "application/vnd.oci.image.layer.nondistributable.v1.tar"
	ociNonDistributableLayerGzip = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
)

// ociLayerTypes maps Docker layer media types to the OCI ones skopeo's
// copy --format oci writes for them. Foreign layers become OCI
// non-distributable layers and keep their urls.
var ociLayerTypes = map[string]string{
	mediatype.DockerLayer:        ocispec.MediaTypeImageLayerGzip,
	dockerLayerTar:               ocispec.MediaTypeImageLayer,
	dockerLayerZstd:              ocispec.MediaTypeImageLayerZstd,
	mediatype.DockerForeignLayer: ociNonDistributableLayerGzip,
	dockerForeignLayerTar:        ociNonDistributableLayer,
}

// ociTypeOf returns the OCI media type of a descriptor a Docker manifest
// lists: OCI types pass unchanged, Docker ones are translated, and anything
// else is refused, as skopeo refuses it, because an OCI tool could not
// know what to do with it either.
func ociTypeOf(d ocispec.Descriptor, isConfig bool) (string, error) {
	switch {
	case isConfig:
		// A Docker image config is an OCI image config with extra fields,
		// which OCI tools ignore. skopeo re-encodes the config and so
		// changes its digest; the view keeps the registry's bytes, so that
		// every blob digest stays the registry's.
		return ocispec.MediaTypeImageConfig, nil
	case ociLayerTypes[d.MediaType] != "":
		return ociLayerTypes[d.MediaType], nil
	case strings.HasPrefix(d.MediaType, "application/vnd.oci."):
		return d.MediaType, nil
	}
	return "", fmt.Errorf("layer %s: no OCI equivalent of media type %q", d.Digest, d.MediaType)
}

// ociManifest returns the OCI twin of a Docker schema2 manifest: the same
// config and layer blobs, with OCI media types. Descriptor fields other
// than the media type (digest, size, urls, annotations) are kept. The
// output is deterministic: the same input gives the same bytes.
func ociManifest(docker []byte) ([]byte, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(docker, &m); err != nil {
		return nil, fmt.Errorf("decode Docker manifest: %w", err)
	}
	if m.MediaType != mediatype.DockerManifest {
		return nil, fmt.Errorf("not a Docker schema2 manifest: media type %q", m.MediaType)
	}
	out := ocispec.Manifest{
		Versioned:   specs.Versioned{SchemaVersion: 2},
		MediaType:   ocispec.MediaTypeImageManifest,
		Config:      m.Config,
		Layers:      make([]ocispec.Descriptor, len(m.Layers)),
		Annotations: m.Annotations,
	}
	var err error
	if out.Config.MediaType, err = ociTypeOf(m.Config, true); err != nil {
		return nil, err
	}
	for i, l := range m.Layers {
		out.Layers[i] = l
		if out.Layers[i].MediaType, err = ociTypeOf(l, false); err != nil {
			return nil, err
		}
	}
	return json.Marshal(out)
}

// ociIndex returns the OCI twin of a Docker manifest list: entries whose
// manifest has a twin in twins point at the twin; every other entry, and
// every entry's platform and annotations, is kept as listed.
func ociIndex(docker []byte, twins map[digest.Digest]ocispec.Descriptor) ([]byte, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(docker, &idx); err != nil {
		return nil, fmt.Errorf("decode Docker manifest list: %w", err)
	}
	if idx.MediaType != mediatype.DockerManifestList {
		return nil, fmt.Errorf("not a Docker manifest list: media type %q", idx.MediaType)
	}
	out := ocispec.Index{
		Versioned:   specs.Versioned{SchemaVersion: 2},
		MediaType:   ocispec.MediaTypeImageIndex,
		Manifests:   make([]ocispec.Descriptor, len(idx.Manifests)),
		Annotations: idx.Annotations,
	}
	for i, m := range idx.Manifests {
		if twin, ok := twins[m.Digest]; ok {
			m.MediaType, m.Digest, m.Size = twin.MediaType, twin.Digest, twin.Size
		}
		out.Manifests[i] = m
	}
	return json.Marshal(out)
}

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
		if p.Manifest.MediaType != mediatype.DockerManifest {
			continue
		}
		data, err := store.ReadMetadata(ctx, p.Manifest)
		if err != nil {
			return img, err
		}
		twinData, err := ociManifest(data)
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
		p.Config.MediaType, _ = ociTypeOf(p.Config, true)
		p.Layers = append([]ocispec.Descriptor(nil), p.Layers...)
		for j := range p.Layers {
			p.Layers[j].MediaType, _ = ociTypeOf(p.Layers[j], false)
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
	case mediatype.DockerManifest:
		out.Root = twins[img.Root.Digest]
	case mediatype.DockerManifestList:
		data, err := store.ReadMetadata(ctx, img.Root)
		if err != nil {
			return img, err
		}
		twinData, err := ociIndex(data, twins)
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
