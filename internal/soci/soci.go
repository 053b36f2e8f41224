package soci

import "github.com/imgfs/imgfs/internal/oci"

// The artifact types of SOCI index manifests. SOCI records them as the
// config's media type, not in the manifest's artifactType field, so
// registries derive the referrers' artifact type from the config.
const (
	ArtifactTypeV1 = oci.SOCIIndexV1
	ArtifactTypeV2 = "application/vnd.amazon.soci.index.v2+json"
)

// Media types of the blobs an index lists.
const (
	// ZtocMediaType is a zTOC's: SOCI gives it no type of its own.
	ZtocMediaType = "application/octet-stream"
	// PrefetchMediaType is a list of files to prefetch, which SOCI may
	// add to an index; imgfs skips it.
	PrefetchMediaType = "application/vnd.amazon.soci.prefetch.v1+json"
)

// Annotations SOCI writes.
const (
	// AnnotationLayerDigest and AnnotationLayerMediaType, on a zTOC's
	// descriptor, name the image layer it indexes.
	AnnotationLayerDigest    = "com.amazon.soci.image-layer-digest"
	AnnotationLayerMediaType = "com.amazon.soci.image-layer-mediaType"
	// AnnotationSpanSize, on a zTOC's descriptor, is the span size it was
	// built with, in bytes.
	AnnotationSpanSize = "com.amazon.soci.span-size"
	// AnnotationBuildTool, on the index, names the tool that built it.
	AnnotationBuildTool = "com.amazon.soci.build-tool-identifier"
	// AnnotationIndexDigest, on a SOCI-enabled image's manifest and on its
	// descriptor in the image index, is the digest of its v2 index.
	AnnotationIndexDigest = "com.amazon.soci.index-digest"
	// AnnotationImageManifestDigest, on a v2 index's descriptor in the
	// image index, is the digest of the image manifest it indexes.
	AnnotationImageManifestDigest = "com.amazon.soci.image-manifest-digest"
)

// emptyConfig is the content of every SOCI index's config: SOCI points the
// config at the empty JSON object and gives it the artifact type as its
// media type.
var emptyConfig = []byte("{}")
