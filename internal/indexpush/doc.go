// Package indexpush publishes the layer indexes of an image in the
// image's own repository, in the form AWS's SOCI defines, so that the
// next machine (imgfs, or SOCI's snapshotter) reads the image's files
// lazily without a pass through its gzip layers.
//
// For each selected image manifest it builds a zTOC of every gzip layer
// large enough to be worth one (internal/layer/ztoc), from the layer's
// bytes verified against its digest: the cache's copy when it is complete,
// else the registry's, streamed through the cache. It then pushes the
// zTOCs and a SOCI index listing them (internal/soci) in one of two forms:
//
//   - v1, the default: the index names the image manifest as its subject
//     and is a referrer of it, indexed by the registry's referrers API or,
//     on a registry without it, listed in the spec's referrers tag;
//   - v2, with a tag: a SOCI-enabled copy of the image under that tag,
//     whose image index lists each converted manifest (OCI media types,
//     annotated with its index's digest) beside its SOCI index, as SOCI's
//     own conversion (soci/soci_convert.go) writes it.
//
// Nothing is pushed until every zTOC is built and its layer verified: a
// layer that fails its digest, or a stream that does not inflate, fails
// the whole push.
//
// It owns choosing the layers, building and checking their zTOCs, and the
// shape of what is published. It must not know flags, output formats or
// terminals (the command line's), HTTP (fetch's client pushes), or the
// zTOC's and the SOCI manifests' encodings (internal/layer/ztoc's and
// internal/soci's).
package indexpush
