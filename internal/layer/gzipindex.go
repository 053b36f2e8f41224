package layer

import (
	"crypto/sha256"
	"hash"
	"io"

	"github.com/imgfs/imgfs/internal/layer/inflate"
	"github.com/imgfs/imgfs/internal/oci"
)

// BuildOptions tunes BuildGzip and BuildZstd.
type BuildOptions struct {
	// Spacing is the least uncompressed distance between checkpoints
	// (default 4 MiB). Each gzip checkpoint holds a 32 KiB window, so the
	// index costs about 32 KiB / Spacing of the tar size before its own
	// compression.
	Spacing int64
}

func (o BuildOptions) spacing() int64 {
	if o.Spacing <= 0 {
		return 4 << 20
	}
	return o.Spacing
}

// BuildGzip indexes a gzip layer in one sequential pass over its
// (verified) bytes from r: the tar entries, a checkpoint at a deflate block
// boundary every Spacing bytes of output with the window before it, and the
// sha256 of every compressed span between checkpoints. The whole stream is
// read, so member checksums are checked, and the index is only as trusted
// as the bytes r yields. A stream that breaks, in the tar or in the gzip
// around it (a truncated member, a bad checksum), gives an error and a
// broken index, as with BuildTar.
func BuildGzip(r io.Reader, opts BuildOptions) (*Index, error) {
	idx := &Index{Format: oci.FormatGzip}
	f := inflate.NewReader(r)
	sh := &spanHasher{h: sha256.New()}
	f.OnDrop = sh.writeAt
	spacing := opts.spacing()
	f.OnBoundary = func(in int64, bits uint8, out int64, member bool) {
		cps := idx.Checkpoints
		if len(cps) > 0 && (out-cps[len(cps)-1].Out < spacing || (in == cps[len(cps)-1].In)) {
			return
		}
		c := Checkpoint{In: in, Bits: bits, Out: out, Member: member}
		if !member {
			c.Window = f.Window()
		}
		if len(cps) > 0 {
			buf, off := f.Input()
			sh.writeAt(buf[:in-off], off)
			idx.Checkpoints[len(cps)-1].SpanDigest = sh.cut()
		}
		idx.Checkpoints = append(idx.Checkpoints, c)
	}
	err := indexTar(newStreamOffsetReader(f), idx)
	if err == nil {
		// Read past the tar's end-of-archive to the gzip trailer(s), so the
		// checksums are checked and the last span is hashed whole.
		if _, err = io.Copy(io.Discard, f); err != nil {
			idx.Err = err.Error()
		}
	}
	if err != nil {
		return idx, err // broken: no span of it is ever read
	}
	buf, off := f.Input()
	sh.writeAt(buf, off)
	rest, _ := io.Copy(sh.h, r)
	idx.BlobSize = off + int64(len(buf)) + rest
	if n := len(idx.Checkpoints); n > 0 {
		idx.Checkpoints[n-1].SpanDigest = sh.cut()
	}
	return idx, err
}

// spanHasher hashes a compressed stream span by span.
type spanHasher struct {
	h  hash.Hash
	at int64 // bytes hashed so far
}

// writeAt hashes the part of b, which starts at stream offset off, that is
// not hashed yet.
func (s *spanHasher) writeAt(b []byte, off int64) {
	if skip := s.at - off; skip < int64(len(b)) {
		b = b[max(skip, 0):]
		s.h.Write(b)
		s.at += int64(len(b))
	}
}

func (s *spanHasher) cut() (d [32]byte) {
	s.h.Sum(d[:0])
	s.h.Reset()
	return d
}
