// Package cache is imgfs's local content store. It is itself an OCI image
// layout (oci-layout, index.json, blobs/sha256/<hex>), so skopeo and umoci
// can read it, and it holds only complete blobs whose size and digest were
// verified. Everything in progress lives under ingest/.
//
// Blobs can be filled whole (Ingest, Fill) or lazily, range by range, as
// readers ask for them (Blob, Reader). Either way the whole digest is checked
// before a blob is committed. The cache knows registries only through the
// Fetcher interface.
package cache
