// Package ztoc parses SOCI zTOCs: the per-layer index that AWS's
// soci-snapshotter publishes for a gzip layer, giving its tar metadata,
// the checkpoints from which gzip decompression can resume, and a sha256
// of every compressed span. Parse turns one zTOC into plain Go values:
// internal/layer's entries, the gzip checkpoints and the span digests.
//
// NewLayer serves the layer's files from a parsed zTOC: it resumes
// inflating (package inflate) at the checkpoint before a read, on spans
// fetched by range through a blobio.ReaderAt and checked against their
// digests before a byte of them is decoded.
//
// It owns reading the format, refusing a bad zTOC, and reading a layer
// through one. It must not know where a zTOC comes from (SOCI indexes,
// registries, the cache) nor where the blob's bytes come from; those
// belong to its callers. A
// zTOC is hostile input, like a tar: every offset is checked against the
// buffer before it is followed, every count against the bytes that would
// hold it before anything is allocated for it, and no panic reaches a
// caller (see Parse).
//
// It reads the flatbuffer through google/flatbuffers' Go runtime, with
// accessors written here for only the fields imgfs uses; it does not use
// SOCI's module, which needs cgo and brings containerd.
//
// # The format, as SOCI v0.16.1 writes it
//
// These facts are read from the sources of
// github.com/awslabs/soci-snapshotter v0.16.1, in the files named. They
// are not yet checked against SOCI's code here; the interop tests (a later
// module of their own under internal/, with cgo) build zTOCs with SOCI and
// parse them with this package, and hand ours to SOCI's ztoc.Unmarshal and
// ExtractFile.
//
// ztoc/fbs/ztoc.fbs, the schema. The root table Ztoc holds, in slot order:
// version (string), build_tool_identifier (string),
// compressed_archive_size and uncompressed_archive_size (long), toc (table
// TOC) and compression_info (table CompressionInfo). TOC holds one vector,
// metadata, of FileMetadata tables: name, type, uncompressed_offset,
// uncompressed_size, linkname, mode (long), uid and gid (uint), uname,
// gname, mod_time (string), devmajor, devminor (long) and xattrs, a vector
// of Xattr tables of key and value strings. CompressionInfo holds
// compression_algorithm (a byte enum: Gzip = 1, the default, and
// Uncompressed = 2), max_span_id (int: the number of spans less one),
// span_digests (strings) and checkpoints (bytes: the zinfo blob).
//
// ztoc/ztoc.go. The only zTOC version is "0.9".
//
// ztoc/toc_builder.go. Entries come from Go's archive/tar, in stream
// order. type is one of reg, dir, symlink, hardlink, char, block and fifo;
// uncompressed_offset is where the entry's data starts in the tar stream
// (the reader's position after its headers); uncompressed_size is the
// header's size; uncompressed_archive_size is the reader's position once
// it reached the end of the archive.
//
// ztoc/ztoc_marshaler.go. mod_time is time.Time's MarshalText (RFC 3339
// with nanoseconds). The field named xattrs holds all of the entry's PAX
// records (the schema says the name is wrong and kept for compatibility).
// On reading, SOCI sorts entries by uncompressed_offset and derives where
// each entry's headers start: 0 for the first, then the previous entry's
// data end rounded up to 512 bytes; an entry whose data starts before that
// is refused.
//
// ztoc/tar.go. The extended attributes are the PAX records named
// "SCHILY.xattr.<name>".
//
// ztoc/compression/gzip_zinfo.h and gzip_zinfo.c, the zinfo blob (zlib's
// zran.c, modified). Little-endian throughout: an int32 checkpoint count,
// an int64 span size, then the checkpoints, each packed as an int64
// compressed offset "in", an int64 uncompressed offset "out", a byte
// "bits" and a 32768-byte window, with no padding. A version 2 blob holds
// count checkpoints; a version 1 blob holds count-1 and its first
// checkpoint is implied (in 10, out 0, bits 0, a zero window); the blob's
// length tells them apart. "in" is the first whole byte of the next deflate
// block; when bits is not 0, the block starts in the byte before, and its
// top "bits" bits are fed back to zlib with inflatePrime. The first checkpoint sits at
// out 0, after the gzip header; the next one at the first block boundary
// after more than the span size of output since the last one, never after
// the last block. The window is the 32 KiB of output before out, zeros
// before the stream's start. Concatenated gzip members (pigz) are indexed
// across member boundaries.
//
// ztoc/compression/gzip_zinfo.go and ztoc/zinfo_builder.go, the spans.
// Span i starts at in-1 when its checkpoint has bits, else at in, and ends
// at the next checkpoint's in (so a byte holding bits of both spans is in
// both), the last at compressed_archive_size, the layer blob's size.
// span_digests[i] is the sha256 of span i's compressed bytes.
//
// soci/soci_index.go, for context: SOCI's default span size is 4 MiB, and
// layers under 10 MiB get no zTOC.
//
// # Stricter than SOCI
//
// SOCI's reader recovers from panics, checks the entries' order and the
// zinfo blob's length, and little else. Parse also refuses what SOCI's
// builder never writes: strings without their NUL, data offsets that are
// not a tar block after a header of their own, entries or checkpoints past
// the sizes the zTOC states, checkpoints out of order or not starting at
// 0, span digests that are not valid sha256 digests, and counts that
// disagree. It reads only the fields imgfs uses: uname, gname and the
// values of PAX records other than extended attributes are never looked
// at, so they are not checked either.
package ztoc
