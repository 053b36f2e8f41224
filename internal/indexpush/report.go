package indexpush

import (
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/soci"
)

// LayerReport is what became of one layer of one selected manifest.
type LayerReport struct {
	Platform ocispec.Platform
	Manifest digest.Digest // the image manifest as the registry had it
	Layer    ocispec.Descriptor
	// Skipped says why the layer has no zTOC; "" when it has one.
	Skipped string
	// Ztoc is the zTOC blob's descriptor, Spans its span count, and
	// Cached says the layer's bytes came from the cache's complete copy
	// rather than the registry.
	Ztoc   ocispec.Descriptor
	Spans  int
	Cached bool
}

// Published is one SOCI index pushed.
type Published struct {
	Platform ocispec.Platform
	Version  soci.Version
	// Source is the image manifest indexed, as the registry had it.
	// Manifest is the one the index is bound to: Source for v1 (the
	// index's subject), its SOCI-enabled rewrite for v2.
	Source, Manifest ocispec.Descriptor
	// Index is the SOCI index manifest, as a referrers list or an image
	// index shows it: artifactType and annotations set.
	Index ocispec.Descriptor
	// Ztocs counts the zTOCs the index lists.
	Ztocs int
	// ReferrersTag, for a v1 index on a registry without the referrers
	// API, is the tag of the referrers index it was added to; "" where
	// the registry's referrers API indexed it.
	ReferrersTag string
}

// Result is what Push published.
type Result struct {
	// Indexes are the SOCI indexes pushed, one per image manifest that
	// had a layer to index, in the image's order.
	Indexes []Published
	// Image, with Options.V2Tag, is the SOCI-enabled image index pushed
	// under Tag.
	Image ocispec.Descriptor
	Tag   string
}
