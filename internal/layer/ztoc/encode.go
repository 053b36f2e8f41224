package ztoc

import (
	"fmt"
	"time"

	flatbuffers "github.com/google/flatbuffers/go"
	"github.com/opencontainers/go-digest"

	"github.com/imgfs/imgfs/internal/layer"
	"github.com/imgfs/imgfs/internal/oci"
)

// Encode writes t as a zTOC of version 0.9: the flatbuffer of ztoc.fbs,
// laid out as SOCI v0.16.1's ztoc.Marshal lays it out (the same objects,
// created in the same order, with the same fields left to their
// defaults), with the checkpoints as a version 2 zinfo blob.
//
// Each entry is written from its Header when t has Headers, and otherwise
// from the entry itself: normalized names, its permission bits as the
// mode, and its extended attributes as the only PAX records. SOCI's
// snapshotter compares names with the tar's before serving a file, so a
// TOC without Headers (one Parse returned) suits imgfs, and SOCI only
// where the tar's names are already normal.
//
// Encode refuses, with an error wrapping ErrNotRepresentable or ErrInvalid,
// a TOC that would not read back through Parse (with default Limits) as
// itself, less its Headers: an entry the format cannot hold (see the
// package doc), entries whose places or headers disagree with what a zTOC
// derives, checkpoints out of order, or digests that are not sha256. It
// writes mod_time as the entry's ModTime marshals, in its own time zone;
// Build's times are in UTC, so that a layer's zTOC does not depend on the
// machine that built it.
func Encode(t *TOC) ([]byte, error) {
	if err := checkEncodable(t); err != nil {
		return nil, err
	}
	size := sizeBound(t)
	if size > DefaultMaxSize {
		return nil, fmt.Errorf("%w: a zTOC of up to %d bytes, which may be over the %d Parse reads", ErrNotRepresentable, size, DefaultMaxSize)
	}
	files := make([]fileMetadata, len(t.Entries))
	links := linkTargets{}
	for i := range t.Entries {
		e := &t.Entries[i]
		h := t.header(i)
		if err := checkEntry(e, &h); err != nil {
			return nil, fmt.Errorf("%w: entry %d %s: %w", ErrNotRepresentable, i, oci.Quote(h.Name), err)
		}
		if err := links.check(e); err != nil {
			return nil, fmt.Errorf("%w: entry %d %s: %w", ErrNotRepresentable, i, oci.Quote(h.Name), err)
		}
		links.add(e.Name)
		files[i] = record(e, &h)
	}
	zinfo, err := encodeZinfo(t.SpanSize, t.CompressedSize, t.Checkpoints)
	if err != nil {
		return nil, invalid(err)
	}
	b := flatbuffers.NewBuilder(int(size))
	version := b.CreateString(version09)
	tool := b.CreateString(t.BuildTool)
	toc := encodeMetadata(b, files)
	info := encodeCompressionInfo(b, zinfo, t.SpanDigests)
	b.StartObject(6)
	b.PrependUOffsetTSlot(ztocVersion, version, 0)
	b.PrependUOffsetTSlot(ztocBuildTool, tool, 0)
	b.PrependUOffsetTSlot(ztocTOC, toc, 0)
	b.PrependInt64Slot(ztocCompressedSize, t.CompressedSize, 0)
	b.PrependInt64Slot(ztocUncompressedSize, t.UncompressedSize, 0)
	b.PrependUOffsetTSlot(ztocCompressionInfo, info, 0)
	b.Finish(b.EndObject())
	return b.FinishedBytes(), nil
}

// header returns entry i's Header, or one made from the entry.
func (t *TOC) header(i int) Header {
	if t.Headers != nil {
		return t.Headers[i]
	}
	return headerFrom(&t.Entries[i])
}

// checkEncodable checks what Encode writes besides the entries' own fields, as
// Parse would check it on reading: the sizes, the entries' places, and the
// spans' counts and digests. The checkpoints are checked as they are
// packed.
func checkEncodable(t *TOC) error {
	switch {
	case t == nil:
		return fmt.Errorf("%w: no TOC", ErrInvalid)
	case t.Version != "" && t.Version != version09:
		return fmt.Errorf("%w: version %s; only %q is written", ErrUnsupported, oci.Quote(t.Version), version09)
	case t.Headers != nil && len(t.Headers) != len(t.Entries):
		return fmt.Errorf("%w: %d headers for %d entries", ErrInvalid, len(t.Headers), len(t.Entries))
	case len(t.Entries) > DefaultMaxEntries:
		return fmt.Errorf("%w: %d entries, over the %d Parse reads", ErrNotRepresentable, len(t.Entries), DefaultMaxEntries)
	case len(t.SpanDigests) != len(t.Checkpoints):
		return fmt.Errorf("%w: %d span digests for %d checkpoints", ErrInvalid, len(t.SpanDigests), len(t.Checkpoints))
	case len(t.BuildTool) > DefaultMaxString:
		return fmt.Errorf("%w: build tool of %d bytes", ErrInvalid, len(t.BuildTool))
	}
	if err := t.checkSizes(); err != nil {
		return invalid(err)
	}
	if err := checkPlaces(t); err != nil {
		return invalid(err)
	}
	for i, d := range t.SpanDigests {
		if err := oci.CheckDigest(d); err != nil || d.Algorithm() != digest.SHA256 {
			return fmt.Errorf("%w: span %d: digest %s is not a sha256 digest", ErrInvalid, i, oci.Quote(string(d)))
		}
	}
	return nil
}

// checkPlaces checks that each entry lies where a zTOC places it: in
// stream order, its data a tar block after a header of its own, its
// headers where the data before them ends, rounded up to a tar block, as
// readEntries derives them, and within the archive.
func checkPlaces(t *TOC) error {
	next := int64(0)
	for i := range t.Entries {
		e := &t.Entries[i]
		size := e.Size
		if e.Type != layer.TypeRegular {
			size = 0
		}
		switch {
		case e.DataOffset%blockSize != 0 || e.DataOffset < next+blockSize:
			return fmt.Errorf("entry %d %s: data at %d, not a tar block after a header past %d", i, oci.Quote(e.Name), e.DataOffset, next)
		case e.Offset != next:
			return fmt.Errorf("entry %d %s: headers at %d, where a zTOC places them at %d", i, oci.Quote(e.Name), e.Offset, next)
		case size < 0 || e.DataOffset > t.UncompressedSize || size > t.UncompressedSize-e.DataOffset:
			return fmt.Errorf("entry %d %s: %d bytes at %d run past the archive's %d", i, oci.Quote(e.Name), size, e.DataOffset, t.UncompressedSize)
		}
		next = alignBlock(e.DataOffset + size)
	}
	return nil
}

// record makes entry e's FileMetadata from its headers h. The size of an
// entry that is not a regular file is 0, whatever its header said:
// archive/tar reads no data for it, and SOCI and Parse place the next
// entry's headers after the size recorded.
func record(e *layer.Entry, h *Header) fileMetadata {
	modTime, _ := e.ModTime().MarshalText() // checkEntry has checked it
	size := e.Size
	if e.Type != layer.TypeRegular {
		size = 0
	}
	return fileMetadata{
		name: h.Name, typ: typeStrings[e.Type],
		offset: e.DataOffset, size: size,
		linkname: h.Linkname, mode: h.Mode,
		uid: uint32(e.UID), gid: uint32(e.GID),
		uname: h.Uname, gname: h.Gname,
		modTime:  string(modTime),
		devmajor: h.Devmajor, devminor: h.Devminor,
		pax: h.paxRecords(),
	}
}

// fileMetadata is one FileMetadata table of ztoc.fbs, field for field, as
// it is written. The tests write hostile ones with it too.
type fileMetadata struct {
	name, typ          string
	offset, size       int64
	linkname           string
	mode               int64
	uid, gid           uint32
	uname, gname       string
	modTime            string
	devmajor, devminor int64
	pax                [][2]string // the records of the field named xattrs, in order
}

// The slots of FileMetadata that Parse does not read.
const (
	fmUname = 8
	fmGname = 9
)

// encode writes the table as SOCI's prepareMetadataOffset does: its
// strings, then its PAX records, then the table, every field added even
// when it holds its default.
func (f *fileMetadata) encode(b *flatbuffers.Builder) flatbuffers.UOffsetT {
	name := b.CreateString(f.name)
	typ := b.CreateString(f.typ)
	link := b.CreateString(f.linkname)
	uname := b.CreateString(f.uname)
	gname := b.CreateString(f.gname)
	modTime := b.CreateString(f.modTime)
	recs := make([]flatbuffers.UOffsetT, len(f.pax))
	for i, kv := range f.pax {
		k, v := b.CreateString(kv[0]), b.CreateString(kv[1])
		b.StartObject(2)
		b.PrependUOffsetTSlot(xattrKey, k, 0)
		b.PrependUOffsetTSlot(xattrValue, v, 0)
		recs[i] = b.EndObject()
	}
	pax := vectorOf(b, recs)
	b.StartObject(14)
	b.PrependUOffsetTSlot(fmName, name, 0)
	b.PrependUOffsetTSlot(fmType, typ, 0)
	b.PrependInt64Slot(fmOffset, f.offset, 0)
	b.PrependInt64Slot(fmSize, f.size, 0)
	b.PrependUOffsetTSlot(fmLinkname, link, 0)
	b.PrependInt64Slot(fmMode, f.mode, 0)
	b.PrependUint32Slot(fmUID, f.uid, 0)
	b.PrependUint32Slot(fmGID, f.gid, 0)
	b.PrependUOffsetTSlot(fmUname, uname, 0)
	b.PrependUOffsetTSlot(fmGname, gname, 0)
	b.PrependUOffsetTSlot(fmModTime, modTime, 0)
	b.PrependInt64Slot(fmDevmajor, f.devmajor, 0)
	b.PrependInt64Slot(fmDevminor, f.devminor, 0)
	b.PrependUOffsetTSlot(fmXattrs, pax, 0)
	return b.EndObject()
}

// encodeMetadata writes the TOC table. SOCI makes the entries' tables
// from the last to the first, and a flatbuffer is built back to front, so
// the first entry's table lies first; this does the same, for the same
// bytes.
func encodeMetadata(b *flatbuffers.Builder, files []fileMetadata) flatbuffers.UOffsetT {
	offs := make([]flatbuffers.UOffsetT, len(files))
	for i := len(files) - 1; i >= 0; i-- {
		offs[i] = files[i].encode(b)
	}
	metadata := vectorOf(b, offs)
	b.StartObject(1)
	b.PrependUOffsetTSlot(tocMetadata, metadata, 0)
	return b.EndObject()
}

// encodeCompressionInfo writes the CompressionInfo table as SOCI does: the
// zinfo blob, then the digests, then the table. The algorithm is left
// out: gzip is its default, and the flatbuffers runtime leaves out a field
// set to its default.
func encodeCompressionInfo(b *flatbuffers.Builder, zinfo []byte, digests []digest.Digest) flatbuffers.UOffsetT {
	checkpoints := b.CreateByteVector(zinfo)
	offs := make([]flatbuffers.UOffsetT, len(digests))
	for i, d := range digests {
		offs[i] = b.CreateString(d.String())
	}
	spanDigests := vectorOf(b, offs)
	b.StartObject(4)
	b.PrependInt32Slot(infoMaxSpanID, int32(len(digests)-1), 0)
	b.PrependUOffsetTSlot(infoSpanDigests, spanDigests, 0)
	b.PrependUOffsetTSlot(infoCheckpoints, checkpoints, 0)
	return b.EndObject()
}

// vectorOf writes a vector of offsets, which the builder takes back to
// front.
func vectorOf(b *flatbuffers.Builder, offs []flatbuffers.UOffsetT) flatbuffers.UOffsetT {
	b.StartVector(4, len(offs), 4)
	for i := len(offs) - 1; i >= 0; i-- {
		b.PrependUOffsetT(offs[i])
	}
	return b.EndVector(len(offs))
}

// sizeBound is at least the bytes Encode writes of t: every string with
// its length, NUL and padding, every table and vtable at its largest, and
// the zinfo blob. It sizes the builder, and lets Build and Encode refuse a
// zTOC over what Parse reads before the runtime panics at a flatbuffer
// over 2 GiB.
func sizeBound(t *TOC) int64 {
	str := func(n int) int64 { return int64(n) + 8 }
	const (
		fixed    = 256                  // the root table, TOC and CompressionInfo, their vtables, the version
		perFile  = 4 + 4 + 2*16 + 8*7*2 // its slot in the vector, its vtable and table, generously
		perXattr = 4 + 8 + 16           // its slot, its vtable and table
		maxType  = len("hardlink")
		maxTime  = len(time.RFC3339Nano) + 8 // a year of 5 digits, a zone's colon
		digestN  = len("sha256:") + 64
	)
	n := fixed + str(len(t.BuildTool)) + zinfoSize(len(t.Checkpoints)) + 8 + int64(len(t.SpanDigests))*(4+str(digestN))
	for i := range t.Entries {
		h := t.header(i)
		n += perFile + str(len(h.Name)) + str(maxType) + str(len(h.Linkname)) + str(len(h.Uname)) + str(len(h.Gname)) + str(maxTime)
		for k, v := range h.PAX {
			n += perXattr + str(len(k)) + str(len(v))
		}
	}
	return n
}
