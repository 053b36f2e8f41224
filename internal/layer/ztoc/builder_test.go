package ztoc

import (
	flatbuffers "github.com/google/flatbuffers/go"
)

// This file is the tests' own zTOC encoder: it writes ztoc.fbs's tables
// with the flatbuffers runtime's Builder, field for field, so that the
// tests can make valid zTOCs and break them one field at a time, leave
// tables out, share them, or write what Encode refuses to. The entries'
// tables are Encode's own (fileMetadata), which write any field given.
// SOCI's own encoder checks the layout in the interop tests.

// zfile is a FileMetadata table to encode: the product's own record,
// written by its own encode, which writes whatever fields it is given.
type zfile = fileMetadata

// zspec is a Ztoc table to encode.
type zspec struct {
	version, buildTool       string
	compressed, uncompressed int64
	files                    []zfile
	noTOC, noInfo            bool
	algorithm                byte // 0 leaves the field out: gzip
	maxSpanID                int32
	digests                  []string
	zinfo                    []byte
	// share makes every entry of the toc the same table, the first file.
	share bool
}

func (s zspec) encode() []byte {
	b := flatbuffers.NewBuilder(1 << 10)
	version := b.CreateString(s.version)
	tool := b.CreateString(s.buildTool)
	var toc, info flatbuffers.UOffsetT
	if !s.noTOC {
		toc = s.encodeTOC(b)
	}
	if !s.noInfo {
		info = s.encodeInfo(b)
	}
	b.StartObject(6)
	b.PrependUOffsetTSlot(ztocVersion, version, 0)
	b.PrependUOffsetTSlot(ztocBuildTool, tool, 0)
	b.PrependInt64Slot(ztocCompressedSize, s.compressed, 0)
	b.PrependInt64Slot(ztocUncompressedSize, s.uncompressed, 0)
	if toc != 0 {
		b.PrependUOffsetTSlot(ztocTOC, toc, 0)
	}
	if info != 0 {
		b.PrependUOffsetTSlot(ztocCompressionInfo, info, 0)
	}
	b.Finish(b.EndObject())
	return b.FinishedBytes()
}

func (s zspec) encodeTOC(b *flatbuffers.Builder) flatbuffers.UOffsetT {
	offs := make([]flatbuffers.UOffsetT, len(s.files))
	for i, f := range s.files {
		if s.share && i > 0 {
			offs[i] = offs[0]
			continue
		}
		offs[i] = f.encode(b)
	}
	metadata := vectorOf(b, offs)
	b.StartObject(1)
	b.PrependUOffsetTSlot(tocMetadata, metadata, 0)
	return b.EndObject()
}

func (s zspec) encodeInfo(b *flatbuffers.Builder) flatbuffers.UOffsetT {
	digests := make([]flatbuffers.UOffsetT, len(s.digests))
	for i, d := range s.digests {
		digests[i] = b.CreateString(d)
	}
	digestVec := vectorOf(b, digests)
	var zinfo flatbuffers.UOffsetT
	if s.zinfo != nil {
		zinfo = b.CreateByteVector(s.zinfo)
	}
	b.StartObject(4)
	if s.algorithm != 0 {
		b.PrependByteSlot(infoAlgorithm, s.algorithm, 0)
	}
	b.PrependInt32Slot(infoMaxSpanID, s.maxSpanID, 0)
	b.PrependUOffsetTSlot(infoSpanDigests, digestVec, 0)
	if zinfo != 0 {
		b.PrependUOffsetTSlot(infoCheckpoints, zinfo, 0)
	}
	return b.EndObject()
}
