// Package soci reads and writes SOCI index manifests: the OCI image
// manifests through which AWS's soci-snapshotter publishes a zTOC for
// each gzip layer of an image (see internal/layer/ztoc for the zTOC
// itself).
//
// A SOCI index is found in one of two ways, which differ in trust:
//
//   - v2 (artifactType ArtifactTypeV2): a SOCI-enabled image's manifest
//     carries AnnotationIndexDigest, the digest of its index, and the image
//     index lists that index beside it. The index is reached through
//     digests from the user's reference, so it is bound to the image.
//   - v1 (ArtifactTypeV1): the index names the image manifest as its
//     subject and is listed among the manifest's referrers. Anyone who can
//     push to the repository can add one, so it is bound to nothing.
//
// The package owns the manifests' shape, the annotations and media types
// SOCI v0.16.1 gives them (soci/soci_index.go and soci/soci_convert.go in
// its sources), and refusing a malformed one. It does no I/O: where an
// index comes from, and whether to trust it, are its callers' to decide.
package soci
