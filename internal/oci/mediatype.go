package oci

import (
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker media types, which registries still serve alongside OCI ones.
const (
	DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	DockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	DockerConfig       = "application/vnd.docker.container.image.v1+json"
	DockerLayer        = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	DockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	DockerSchema1      = "application/vnd.docker.distribution.manifest.v1+json"
	DockerSchema1JWS   = "application/vnd.docker.distribution.manifest.v1+prettyjws"

	// LegacyConfig is what some old pushers used for configs.
	LegacyConfig = "application/octet-stream"
)

// Manifests lists the index and manifest types imgfs walks, in order of
// preference: the Accept list for manifest requests.
var Manifests = []string{
	ocispec.MediaTypeImageIndex,
	ocispec.MediaTypeImageManifest,
	DockerManifestList,
	DockerManifest,
}

// IsIndex reports whether mediaType is an OCI index or a Docker manifest list.
func IsIndex(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageIndex || mediaType == DockerManifestList
}

// IsManifest reports whether mediaType is a single-platform manifest.
func IsManifest(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageManifest || mediaType == DockerManifest
}

// IsSchema1 reports whether mediaType is the retired Docker schema1.
func IsSchema1(mediaType string) bool {
	return mediaType == DockerSchema1 || mediaType == DockerSchema1JWS
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
	case mt == ocispec.MediaTypeImageConfig, mt == DockerConfig, mt == LegacyConfig:
		return KindConfig
	default:
		return KindLayer
	}
}

// IsMetadata reports whether desc is an index, manifest or config: the
// small blobs that are read whole into memory and fetched eagerly.
func IsMetadata(desc ocispec.Descriptor) bool { return KindOf(desc) != KindLayer }

// SOCIIndexV1 is the artifactType of a v1 SOCI index: an image manifest
// whose subject is the image it indexes, found through the referrers API
// (soci-snapshotter's SociIndexArtifactTypeV1).
const SOCIIndexV1 = "application/vnd.amazon.soci.index.v1+json"
