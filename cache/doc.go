// Package cache is imgfs's local content store. It is itself an OCI image
// layout (oci-layout, index.json, blobs/<alg>/<hex>), so skopeo and umoci
// can read it; everything in progress lives under ingest/. It owns the
// bytes on disk, their verification, and the lifecycle of each blob being
// fetched (a pure state machine in internal/blobfsm, driven by Blob); it
// knows registries only through the Fetcher interface, and nothing of FUSE.
//
// It must not know what is kept or evicted, nor what is derived from a
// layer: housekeeping (pins, last use, the size cap, prune) is cache/gc's,
// which the store is given as a Policy and calls at its moments, and layer
// indexes and file copies are cache/artifacts'. Both build on the few
// primitives listed in primitives.go.
//
// Trust model: nothing from a Fetcher is trusted. A digest must pass
// oci.CheckDigest before any path is built from it, and only bytes whose whole
// digest matched are ever committed to blobs/, by rename, never written
// again. Readers may see bytes not yet verified only in VerifyLazy mode
// and only short of the blob's end: a read that includes the last byte
// (with VerifyStrict, any read) waits for the verdict and fails with
// errdefs.ErrDigestMismatch on a mismatch, so a reader that reads to the end
// never ends cleanly on bad bytes.
package cache
