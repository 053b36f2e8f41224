// Package socitest makes SOCI artifacts with SOCI's own code
// (github.com/awslabs/soci-snapshotter v0.16.1) for imgfs's interop tests,
// and reads zTOCs back with SOCI's own reader.
//
// It builds a gzip layer's zTOC with SOCI's ztoc builder and serializes it
// with ztoc.Marshal; makes SOCI index manifests with soci.NewIndex and
// soci.MarshalIndex, v1 (subject: the image manifest) and v2 (no subject);
// and pushes them as SOCI does: a v1 index as a referrer, through the
// registry's referrers API or the distribution spec 1.1's <alg>-<hex> tag
// fallback, and a v2 index inside a SOCI-enabled image, as soci convert
// makes one. ReadBack reads every file of a layer through a zTOC with
// SOCI's ztoc.Unmarshal and ExtractFile, after checking its span digests
// as SOCI does, so that the zTOCs imgfs publishes can be checked by SOCI.
//
// Client pushes over the distribution API to either registry of the tests:
// the Debian docker-registry that internal/testregistry starts (no
// referrers API) and ReferrersRegistry, go-containerregistry's in-process
// registry with the API on.
//
// It needs cgo and zlib (SOCI's zinfo is C), which is why it lives in a
// module of its own: neither SOCI, containerd nor go-containerregistry
// may enter imgfs's own go.mod. It must not know imgfs's code beyond the
// test harness (internal/testregistry); the tests beside it hold imgfs's
// parser and client up against what it makes.
package socitest
