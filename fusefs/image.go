package fusefs

import (
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Image is everything the filesystem shows, as resolved by the handler
// chain. Manifests, indexes and configs are already in the cache; layers
// may not be.
type Image struct {
	// Name is the layout name of the image: the reference's tag, or for a
	// digest-only reference "sha256-" plus the first 12 hex digits.
	Name string

	// Root is the resolved descriptor: an index or a single manifest.
	Root ocispec.Descriptor

	// Platforms lists the selected single-platform images, the default one
	// first. For a root that is a manifest there is exactly one.
	Platforms []PlatformImage

	// RegistryRoot is the root as the registry serves it, set when Root is
	// an OCI-typed view of a Docker-typed root. index.json names it
	// <Name>-docker, so that users who pin the registry's digest find it.
	RegistryRoot *ocispec.Descriptor

	// IndexComplete says every child of a root index was reached, so the
	// whole index can be named in index.json (skopeo copy --all needs it).
	IndexComplete bool

	// Blobs lists every descriptor the chain reached, without duplicates.
	Blobs []ocispec.Descriptor

	// Created is the image's creation time, used as every node's mtime.
	Created time.Time

	// Files, when set, adds the file views: rootfs/ and a directory per
	// layer, layers/<n>-<hex>/, beside each layer's blob link.
	Files LayerFiles
}

// PlatformImage is one single-platform image of the mount.
type PlatformImage struct {
	Platform ocispec.Platform
	Manifest ocispec.Descriptor
	Config   ocispec.Descriptor
	Layers   []ocispec.Descriptor
}
