package layer

import (
	"errors"
	"fmt"

	"github.com/imgfs/imgfs/internal/layer/inflate"
	"github.com/imgfs/imgfs/internal/oci"
)

// Index is the file index of one layer: every tar entry in stream order,
// and for compressed layers the checkpoints from which decompression can
// start again. An index built from verified layer bytes is trusted; its
// serialization is stored keyed by the layer digest.
type Index struct {
	Format oci.LayerFormat
	// BlobSize is the size of the layer blob; TarSize that of the
	// uncompressed tar stream (up to where indexing stopped).
	BlobSize, TarSize int64
	Entries           []Entry
	// Checkpoints are sorted by both offsets; the first is at the start
	// of the stream. Span i runs from Checkpoints[i].In to
	// Checkpoints[i+1].In, the last to BlobSize.
	Checkpoints []Checkpoint
	// Err, when not "", says why the stream broke before a clean end
	// (see BuildTar): the layer is broken. The entries before the break
	// are kept to say where it broke, but they are not the layer: served,
	// they would look like a smaller, valid layer. Check reports it, and
	// NewLayer refuses such an index.
	Err string
}

// Checkpoint is a point from which decompression can resume.
//
// For gzip it is a deflate block header (or a member header when Member is
// set) at bit Bits of byte In, with Window the up to 32 KiB of output
// before it, as zlib's zran records. For zstd it is a frame start, Bits is
// 0 and Window is empty.
type Checkpoint struct {
	In     int64 // compressed offset of the byte holding the first bit
	Bits   uint8 // bit within that byte, 0-7, least significant first
	Out    int64 // uncompressed offset
	Member bool  // gzip: starts at a member header, not a block
	Window []byte
	// SpanDigest is the sha256 of the compressed bytes from In to the next
	// checkpoint's In (the last: to the end of the blob).
	SpanDigest [32]byte
}

// inflatePoint is gzip checkpoint c as package inflate resumes from it.
func (c *Checkpoint) inflatePoint() inflate.Checkpoint {
	return inflate.Checkpoint{In: c.In, Bits: c.Bits, Out: c.Out, Member: c.Member, Window: c.Window}
}

// spanEnd is the compressed end of span i.
func (x *Index) spanEnd(i int) int64 {
	if i+1 < len(x.Checkpoints) {
		return x.Checkpoints[i+1].In
	}
	return x.BlobSize
}

// checkpointFor returns the last checkpoint at or before uncompressed
// offset out.
func (x *Index) checkpointFor(out int64) int {
	lo, hi := 0, len(x.Checkpoints)
	for hi-lo > 1 {
		m := (lo + hi) / 2
		if x.Checkpoints[m].Out <= out {
			lo = m
		} else {
			hi = m
		}
	}
	return lo
}

// StreamError says where a layer stream stopped being readable. The entries
// before Offset were indexed; After names the last good entry.
type StreamError struct {
	Offset int64 // uncompressed offset of the header that failed
	After  string
	Err    error
}

func (e *StreamError) Error() string {
	after := e.After
	if after == "" {
		after = "(start)"
	}
	return fmt.Sprintf("tar stream at offset %d, after entry %q: %v", e.Offset, after, e.Err)
}

func (e *StreamError) Unwrap() error { return e.Err }

// ErrBroken means a layer's index could not be completed: its tar stream,
// or the compressed stream around it, breaks before a clean end, or its
// TOC does not parse. A broken layer is served not at all rather than in
// part.
var ErrBroken = errors.New("layer: broken layer")

// Check returns nil for a complete index, and for a broken one an error
// wrapping ErrBroken that says where and why its stream broke. An index of
// more than MaxEntries entries, wherever it came from, is broken too.
func (x *Index) Check() error {
	if x.Err == "" && len(x.Entries) > MaxEntries() {
		return errTooManyEntries(MaxEntries())
	}
	if x.Err == "" {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrBroken, x.Err)
}

// ErrCorrupt means bytes did not match the digest the index or TOC
// recorded for them. They are never served.
var ErrCorrupt = errors.New("layer: content does not match its recorded digest")
