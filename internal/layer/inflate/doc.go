// Package inflate decodes gzip streams: RFC 1952 members of RFC 1951
// deflate data, checked against their CRC-32 and size. Unlike compress/gzip
// it reports where every deflate block starts, to the bit, and can start
// decoding again at any such point mid-stream, given the window of output
// before it (a Checkpoint), as zlib's zran example does. That is what lets
// a caller read a gzip stream from the middle without decoding it from the
// start.
//
// It owns the decoding and the checkpoints' meaning, and nothing else: it
// must not know layers, tar, the cache, or how and where checkpoints are
// stored. Its only view of the compressed bytes is an io.Reader that yields
// them in order; which bytes that is, how they are fetched and whether
// they are trusted are the caller's business.
package inflate
