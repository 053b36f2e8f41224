package ztoc

import (
	"encoding/binary"
	"fmt"
	"math"
)

// zinfoSize is the bytes of a version 2 zinfo blob of n checkpoints.
func zinfoSize(n int) int64 {
	return zinfoHeader + int64(n)*(checkpointFixed+WindowSize)
}

// encodeZinfo packs checkpoints as SOCI's zinfo_to_blob packs a version 2
// blob (see the package doc): every checkpoint, the first included, in
// SOCI's terms. Version 1, which leaves the first out and assumes it at
// byte 10, cannot hold a gzip header of another size, and SOCI no longer
// writes it.
//
// The checkpoints are checked as decodeZinfo checks them, so that what is
// written reads back: the first at output 0, both offsets increasing
// (but for several at output 0, see checkRaw), every one inside the blob
// of compressedSize bytes. A window shorter than
// WindowSize is the end of the output before its checkpoint, and is put at
// the end of the window's bytes, after zeros, as zlib's zran puts the
// start of a stream.
func encodeZinfo(spanSize, compressedSize int64, cps []Checkpoint) ([]byte, error) {
	switch {
	case spanSize < 1:
		return nil, fmt.Errorf("checkpoints: span size %d, want at least 1", spanSize)
	case len(cps) == 0 || len(cps) > math.MaxInt32:
		return nil, fmt.Errorf("checkpoints: %d, want 1 to %d", len(cps), math.MaxInt32)
	}
	blob := make([]byte, zinfoSize(len(cps)))
	binary.LittleEndian.PutUint32(blob, uint32(len(cps)))
	binary.LittleEndian.PutUint64(blob[4:], uint64(spanSize))
	p := blob[zinfoHeader:]
	var prev rawCheckpoint
	for i := range cps {
		c := &cps[i]
		if c.Bits > 7 {
			return nil, fmt.Errorf("checkpoint %d: bits %d, want 0-7", i, c.Bits)
		}
		if len(c.Window) > WindowSize {
			return nil, fmt.Errorf("checkpoint %d: window of %d bytes, over %d", i, len(c.Window), WindowSize)
		}
		raw := c.raw()
		if err := checkRaw(i, raw, prev, compressedSize); err != nil {
			return nil, err
		}
		binary.LittleEndian.PutUint64(p, uint64(raw.in))
		binary.LittleEndian.PutUint64(p[8:], uint64(raw.out))
		p[16] = raw.bits
		copy(p[checkpointFixed+WindowSize-len(c.Window):], c.Window)
		p = p[checkpointFixed+WindowSize:]
		prev = raw
	}
	return blob, nil
}

// raw converts a checkpoint to SOCI's zinfo terms, the inverse of
// rawCheckpoint.checkpoint: a block starting at bit b > 0 of byte In
// begins with the top 8-b bits of that byte, and zinfo's in is the whole
// byte after it.
func (c *Checkpoint) raw() rawCheckpoint {
	if c.Bits == 0 {
		return rawCheckpoint{in: c.In, out: c.Out}
	}
	return rawCheckpoint{in: c.In + 1, out: c.Out, bits: 8 - c.Bits}
}
