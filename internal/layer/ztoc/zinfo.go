package ztoc

import (
	"encoding/binary"
	"fmt"
)

// WindowSize is the bytes of output each checkpoint records before its
// offset: deflate's 32 KiB, fixed in SOCI's zinfo.
const WindowSize = 32 << 10

// The zinfo blob's layout (see the package doc): a header of a checkpoint
// count and a span size, then checkpoints, each packed as two offsets, the
// bits and a window.
const (
	zinfoHeader     = 4 + 8
	checkpointFixed = 8 + 8 + 1
)

// Checkpoint is a deflate block boundary from which decompression can
// resume, in imgfs's terms (those of package inflate): bit Bits of byte In
// is the block's first bit. In SOCI's zinfo terms, a checkpoint with
// bits b > 0 has In = in-1 and Bits = 8-b; with b = 0, In = in and Bits = 0.
type Checkpoint struct {
	Out  int64 // uncompressed offset
	In   int64 // compressed offset of the byte holding the block's first bit
	Bits uint8 // bit within that byte, 0-7, least significant first
	// Window is the WindowSize bytes of output before Out, zeros where
	// the stream had not yet produced as much.
	Window []byte
}

// rawCheckpoint is a checkpoint as the zinfo blob records it.
type rawCheckpoint struct {
	in, out int64
	bits    uint8
}

// decodeZinfo decodes a gzip zinfo blob into its span size and
// checkpoints, checking them against the blob's compressed size (see
// checkRaw): the first at output 0, compressed offsets strictly
// increasing and inside the blob, uncompressed ones strictly increasing
// after output 0. The windows are copied out of blob into one
// allocation, of a window per checkpoint: the blob's length has bounded
// the count before it is made.
//
// window is the window's size: WindowSize, except in the fuzz target,
// whose inputs would otherwise be almost all window bytes, which are
// copied and never looked at.
func decodeZinfo(blob []byte, compressedSize int64, window int) (int64, []Checkpoint, error) {
	if len(blob) < zinfoHeader {
		return 0, nil, fmt.Errorf("checkpoints: %d bytes is too short for a zinfo header", len(blob))
	}
	count := int64(int32(binary.LittleEndian.Uint32(blob)))
	spanSize := int64(binary.LittleEndian.Uint64(blob[4:]))
	if count < 1 {
		return 0, nil, fmt.Errorf("checkpoints: count %d, want at least 1", count)
	}
	if spanSize < 1 {
		return 0, nil, fmt.Errorf("checkpoints: span size %d, want at least 1", spanSize)
	}
	// SOCI tells the versions apart by length: version 2 packs every
	// checkpoint, version 1 leaves the first out. count is below 1<<31,
	// so these products fit easily in an int64.
	packed, size := int64(len(blob)-zinfoHeader), int64(checkpointFixed+window)
	var implied bool
	switch packed {
	case count * size:
	case (count - 1) * size:
		implied = true
	default:
		return 0, nil, fmt.Errorf("checkpoints: %d bytes hold neither %d packed checkpoints (zinfo v2) nor %d (v1)",
			len(blob), count, count-1)
	}
	cps := make([]Checkpoint, count)
	windows := make([]byte, count*int64(window))
	var prev rawCheckpoint
	for i := range cps {
		var raw rawCheckpoint
		w := windows[i*window : (i+1)*window : (i+1)*window]
		if i == 0 && implied {
			// Version 1 assumed the first block starts right after a
			// 10-byte gzip header, with nothing before it.
			raw = rawCheckpoint{in: 10}
		} else {
			j := i
			if implied {
				j--
			}
			p := blob[zinfoHeader+int64(j)*size:]
			raw = rawCheckpoint{
				in:   int64(binary.LittleEndian.Uint64(p)),
				out:  int64(binary.LittleEndian.Uint64(p[8:])),
				bits: p[16],
			}
			copy(w, p[checkpointFixed:checkpointFixed+window])
		}
		if err := checkRaw(i, raw, prev, compressedSize); err != nil {
			return 0, nil, err
		}
		cps[i] = raw.checkpoint(w)
		prev = raw
	}
	return spanSize, cps, nil
}

// checkRaw checks checkpoint i against the one before it and the blob.
//
// Uncompressed offsets increase strictly but at output 0, where SOCI's
// builder (zran) adds a checkpoint at every block boundary and member
// header while nothing has been output: a stream that starts with empty
// blocks (a writer flushed before its first byte) or empty gzip members
// has several there, each at a later compressed offset. Past output 0,
// zran adds one only once more output than the span size has come since
// the last, so two at one offset there are never SOCI's. Of several at
// output 0, reads resume at the last, as SOCI's extract does.
func checkRaw(i int, raw, prev rawCheckpoint, compressedSize int64) error {
	switch {
	case raw.bits > 7:
		return fmt.Errorf("checkpoint %d: bits %d, want 0-7", i, raw.bits)
	case raw.in < 0 || raw.out < 0:
		return fmt.Errorf("checkpoint %d: negative offset (in %d, out %d)", i, raw.in, raw.out)
	case raw.bits > 0 && raw.in == 0:
		return fmt.Errorf("checkpoint %d: bits %d from the byte before offset 0", i, raw.bits)
	case raw.in >= compressedSize:
		return fmt.Errorf("checkpoint %d: compressed offset %d is past the compressed size %d", i, raw.in, compressedSize)
	case i == 0 && raw.out != 0:
		// Without a checkpoint at 0, the data before the first one
		// could not be read.
		return fmt.Errorf("checkpoint 0: uncompressed offset %d, want 0", raw.out)
	case i > 0 && (raw.in <= prev.in || raw.out < prev.out || (raw.out == prev.out && raw.out != 0)):
		return fmt.Errorf("checkpoint %d: offsets (in %d, out %d) do not both follow checkpoint %d's (in %d, out %d)",
			i, raw.in, raw.out, i-1, prev.in, prev.out)
	}
	// Checkpoints may lie past the archive's uncompressed size: SOCI
	// records where the tar reader stopped, and the stream may go on with
	// padding in which a block boundary can fall.
	return nil
}

// checkpoint converts a zinfo checkpoint to imgfs's terms.
func (r rawCheckpoint) checkpoint(window []byte) Checkpoint {
	if r.bits == 0 {
		return Checkpoint{Out: r.out, In: r.in, Window: window}
	}
	return Checkpoint{Out: r.out, In: r.in - 1, Bits: 8 - r.bits, Window: window}
}
