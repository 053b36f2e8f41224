// Package layer turns the bytes of an OCI layer into a file index and
// serves the contents of the files it lists. It owns:
//
//   - the index model (Entry, Index) and its versioned, deterministic
//     serialization (Index.MarshalBinary, UnmarshalIndex), so an index can
//     be stored content-addressed in the cache, keyed by the layer digest,
//     and later pushed or pulled as an artifact;
//   - building an index from an uncompressed tar stream (BuildTar), from
//     range reads of an uncompressed tar that skip file data (WalkTar), and
//     from one sequential pass over a gzip or zstd layer that also records
//     decompression checkpoints and a sha256 per compressed span (BuildGzip,
//     BuildZstd); telling a stream that ends cleanly at an entry boundary
//     from one that breaks, whose index is broken (Index.Check, ErrBroken)
//     and never served, so that a layer is served whole or not at all;
//   - opening eStargz and zstd:chunked layers from their TOC by range
//     (OpenEStargz), verifying the TOC and every chunk before serving it;
//   - the per-layer tree and the merged root filesystem with OCI whiteouts,
//     opaque directories and hard links applied (LayerTree, Merge);
//   - serving file bytes (Layer.ReadFile), verified wherever the format
//     allows: gzip and zstd spans against the index, eStargz chunks against
//     the TOC.
//
// Decoding gzip, and resuming it from a checkpoint, is package inflate's;
// this package decides where checkpoints go, stores them in the index and
// verifies the compressed bytes before the decoder sees them.
//
// It must not know FUSE, HTTP, registries or the cache's layout. Its only
// view of a blob is a blobio.ReaderAt, a context-aware ReadAt, which the cache
// provides. Names are untrusted tar input: see NormalizeName.
package layer
