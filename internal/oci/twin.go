package oci

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker layer media types the OCI view translates, besides DockerLayer
// and DockerForeignLayer. The uncompressed and zstd ones are moby's; the
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
	DockerLayer:           ocispec.MediaTypeImageLayerGzip,
	dockerLayerTar:        ocispec.MediaTypeImageLayer,
	dockerLayerZstd:       ocispec.MediaTypeImageLayerZstd,
	DockerForeignLayer:    ociNonDistributableLayerGzip,
	dockerForeignLayerTar: ociNonDistributableLayer,
}

// TwinMediaType returns the OCI media type of a descriptor a Docker manifest
// lists: OCI types pass unchanged, Docker ones are translated, and anything
// else is refused, as skopeo refuses it, because an OCI tool could not
// know what to do with it either.
func TwinMediaType(d ocispec.Descriptor, isConfig bool) (string, error) {
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

// TwinManifest returns the OCI twin of a Docker schema2 manifest: the same
// config and layer blobs, with OCI media types. Descriptor fields other
// than the media type (digest, size, urls, annotations) are kept. The
// output is deterministic: the same input gives the same bytes.
func TwinManifest(docker []byte) ([]byte, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(docker, &m); err != nil {
		return nil, fmt.Errorf("decode Docker manifest: %w", err)
	}
	if m.MediaType != DockerManifest {
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
	if out.Config.MediaType, err = TwinMediaType(m.Config, true); err != nil {
		return nil, err
	}
	for i, l := range m.Layers {
		out.Layers[i] = l
		if out.Layers[i].MediaType, err = TwinMediaType(l, false); err != nil {
			return nil, err
		}
	}
	return json.Marshal(out)
}

// TwinIndex returns the OCI twin of a Docker manifest list: entries whose
// manifest has a twin in twins point at the twin; every other entry, and
// every entry's platform and annotations, is kept as listed.
func TwinIndex(docker []byte, twins map[digest.Digest]ocispec.Descriptor) ([]byte, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(docker, &idx); err != nil {
		return nil, fmt.Errorf("decode Docker manifest list: %w", err)
	}
	if idx.MediaType != DockerManifestList {
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
