// Package ztoc reads and writes SOCI zTOCs: the per-layer index that AWS's
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
// Build makes a layer's zTOC in one pass over its blob, with package
// inflate for a decoder, and Encode writes it in SOCI's own layout, so
// that imgfs can publish SOCI indexes without cgo or SOCI's module. What
// they write, Parse reads back as the same TOC, and SOCI as the same
// layer; what a zTOC cannot hold, they refuse whole (see "What a zTOC
// cannot hold" below).
//
// It owns reading the format, refusing a bad zTOC, reading a layer
// through one, and writing one. It must not know where a zTOC comes from
// or goes (SOCI indexes, registries, the cache) nor where the blob's bytes
// come from; those belong to its callers. A zTOC is hostile input, like a
// tar: every offset is checked against the buffer before it is followed,
// every count against the bytes that would hold it before anything is
// allocated for it, and no panic reaches a caller (see Parse).
//
// It reads the flatbuffer through google/flatbuffers' Go runtime, with
// accessors written here for only the fields imgfs uses, and writes it
// with the runtime's Builder; it does not use SOCI's module, which needs
// cgo and brings containerd.
//
// # The format, as SOCI v0.16.1 writes it
//
// These facts are read from the sources of
// github.com/awslabs/soci-snapshotter v0.16.1, in the files named. The
// interop tests (internal/sociinterop, a module of its own, with cgo)
// check them against SOCI's code: they build zTOCs with SOCI and parse
// them with this package, hand ours to SOCI's ztoc.Unmarshal and
// ExtractFile, and compare Encode's bytes with SOCI's ztoc.Marshal's.
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
// top "bits" bits are fed back to zlib with inflatePrime. The first
// checkpoint sits at out 0, after the gzip header; while the output is
// still empty, one more at every block boundary and member header; after
// that, the next one at the first block boundary after more than the span
// size of output since the last one, never after the last block.
// Extraction resumes at the last checkpoint at or before the offset
// wanted. The window is the 32 KiB of output before out, zeros before the
// stream's start. Concatenated gzip members (pigz) are indexed
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
// the sizes the zTOC states, checkpoints not starting at 0 or out of
// order (compressed offsets not strictly increasing, or uncompressed ones
// not strictly increasing past 0), span digests that are not valid sha256
// digests, and counts that disagree. It reads only the fields imgfs uses:
// uname, gname and the values of PAX records other than extended
// attributes are never looked at, so they are not checked either.
//
// Several checkpoints at one uncompressed offset are SOCI's only at 0: a
// stream that starts with an empty deflate block (a writer flushed before
// its first byte) or an empty gzip member gets one at every boundary while
// the output is still empty, each at a later compressed offset. Parse
// keeps them all, each with its span; NewLayer resumes at the last of
// them, as SOCI's extraction does, and never fetches the spans before it.
//
// # Writing, as SOCI v0.16.1 writes
//
// Build walks the tar as SOCI's toc builder does, archive/tar over a
// count of the bytes it takes, and converts each header with
// layer.EntryFromHeader, so its entries are those layer's own indexers
// find. It keeps each entry's Header too, the fields as the tar spells
// them: SOCI's snapshotter re-reads an entry's headers before serving the
// file and compares them with the zTOC's (fs/reader's Verify), names
// included, so the zTOC must carry "./etc/passwd", not "etc/passwd". It
// places the checkpoints as zran does under SOCI's rule above, on the
// decoder's block boundaries, with windows that run back across member
// boundaries as zran's one sliding window does, and hashes each span as
// the decoder passes over its bytes. Encode creates the flatbuffer's
// objects in the order SOCI's ztoc.Marshal does, with the same fields left
// to their defaults, so that for the same layer, span size and build tool
// the bytes are SOCI's (SOCI's several checkpoints at output 0 included),
// but for two things: mod_time is written in UTC, where SOCI writes
// archive/tar's time.Local, which makes its zTOC depend on the building
// machine's zone; and the cases below.
//
// # What a zTOC cannot hold
//
// layer.Index, imgfs's own index, holds some things a zTOC cannot, and a
// few layers hold what no zTOC can describe so that both Parse and SOCI
// read it back as the layer. Build and Encode never leave an entry out,
// which would serve a smaller layer that looks whole: they refuse the
// layer with ErrNotRepresentable, and it is served through imgfs's own
// index only. Build stops reading at what it refuses.
//
//   - Member checkpoints. layer.Index can resume at a gzip member header;
//     zinfo resumes raw deflate at a block boundary only. SOCI's checkpoint
//     at a member's start is at its first block, after its header, and so
//     is Build's: it passes over the decoder's member boundaries.
//   - The gzip header before the first block lies in no span, where
//     layer.Index's first span starts at byte 0.
//   - Sparse files (GNU or PAX): a zTOC records a file's logical size, and
//     SOCI derives where the next entry's headers start from it; the tar
//     holds less. Refused. So is a regular file with any GNU.sparse PAX
//     record, which Parse would take for a sparse one.
//   - PAX global headers: SOCI's builder refuses them, and the headers
//     SOCI derives for the entry after one would start at it. Refused.
//   - Entries layer marks bad (a name that escapes the root or is not a
//     name, an unsupported tar type, a bad hard link target): layer.Index
//     keeps them to say why they are not served; Parse refuses such names,
//     SOCI's builder such types. Refused.
//   - A hard link to a name no entry before it holds or implies: SOCI's
//     snapshotter refuses the whole layer over one. Refused.
//   - An owner over 32 bits, a time RFC 3339 cannot write (years past
//     9999), a string over Parse's DefaultMaxString that Parse reads (link
//     targets, PAX keys, extended attributes), more than DefaultMaxEntries
//     entries, a zTOC that may be over DefaultMaxSize. Refused.
//   - The size field of an entry that is not a regular file: archive/tar
//     reads no data for it, and a zTOC places the next entry's headers
//     after the size it records, so Build writes 0 where SOCI writes the
//     header's (0 in every tar but odd ones).
//   - Where an entry's headers start: a zTOC derives it from the entry
//     before, so TOC.Entries' Offset is the derived one, which is the tar's
//     own in every layer Build accepts.
package ztoc
