package fetch

import (
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker media types, which registries still serve alongside OCI ones.
const (
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	MediaTypeDockerSchema1      = "application/vnd.docker.distribution.manifest.v1+json"
	MediaTypeDockerSchema1JWS   = "application/vnd.docker.distribution.manifest.v1+prettyjws"

	// MediaTypeLegacyConfig is what some old pushers used for configs.
	MediaTypeLegacyConfig = "application/octet-stream"
)

// ManifestMediaTypes is the Accept list for manifest requests. Distribution
// answers 404 to a request that does not name the type it stores.
var ManifestMediaTypes = []string{
	ocispec.MediaTypeImageIndex,
	ocispec.MediaTypeImageManifest,
	MediaTypeDockerManifestList,
	MediaTypeDockerManifest,
}

// IsIndex reports whether mediaType is an OCI index or a Docker manifest list.
func IsIndex(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageIndex || mediaType == MediaTypeDockerManifestList
}

// IsManifest reports whether mediaType is a single-platform manifest.
func IsManifest(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageManifest || mediaType == MediaTypeDockerManifest
}

// IsSchema1 reports whether mediaType is the retired Docker schema1.
func IsSchema1(mediaType string) bool {
	return mediaType == MediaTypeDockerSchema1 || mediaType == MediaTypeDockerSchema1JWS
}

// Kind names a descriptor's role the way ctr prints it: index, manifest,
// config or layer.
type Kind string

// The kinds of descriptor in an image tree.
const (
	KindIndex    Kind = "index"
	KindManifest Kind = "manifest"
	KindConfig   Kind = "config"
	KindLayer    Kind = "layer"
)

// KindOf tells a descriptor's role from its media type. Anything a manifest
// lists that is not a config is a layer (including attestation blobs).
func KindOf(desc ocispec.Descriptor) Kind {
	switch mt := desc.MediaType; {
	case IsIndex(mt):
		return KindIndex
	case IsManifest(mt):
		return KindManifest
	case mt == ocispec.MediaTypeImageConfig, mt == MediaTypeDockerConfig, mt == MediaTypeLegacyConfig:
		return KindConfig
	default:
		return KindLayer
	}
}

// IsMetadata reports whether desc is an index, manifest or config: the
// small blobs a mount fetches eagerly.
func IsMetadata(desc ocispec.Descriptor) bool { return KindOf(desc) != KindLayer }
