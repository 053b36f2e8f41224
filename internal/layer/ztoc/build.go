package ztoc

import (
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/imgfs/imgfs/internal/layer"
	"github.com/imgfs/imgfs/internal/layer/inflate"
)

// DefaultSpanSize is SOCI's default span size (soci/soci_index.go).
const DefaultSpanSize = 4 << 20

// DefaultBuildTool is the build_tool_identifier Build records unless told
// another.
const DefaultBuildTool = "imgfs"

// ErrNotRepresentable means a layer, or a TOC, holds something that a zTOC
// cannot describe so that both Parse and SOCI read it back as the layer
// (see the package doc, "What a zTOC cannot hold"). Build and Encode
// refuse it whole rather than leave anything out. The layer is not broken:
// imgfs's own index serves it; it only gets no zTOC.
var ErrNotRepresentable = errors.New("not representable in a zTOC")

// BuildOptions tunes Build. A field left zero takes its default.
type BuildOptions struct {
	// SpanSize is the uncompressed bytes between checkpoints: each one
	// after the first is at the first deflate block boundary more than
	// SpanSize bytes of output past the one before (DefaultSpanSize). It
	// is recorded in the zTOC. Each checkpoint holds a 32 KiB window, so
	// the zTOC costs about 32 KiB per SpanSize of the tar.
	SpanSize int64
	// BuildTool is the build_tool_identifier recorded (DefaultBuildTool).
	BuildTool string
}

// Build makes the zTOC of a gzip layer in one sequential pass over its
// blob, read from r: the tar entries as SOCI's toc builder records them,
// the checkpoints where SOCI's zinfo builder puts them, and the sha256 of
// every span, from our own decoder (package inflate), with neither cgo nor
// SOCI's module. Its memory is the decoder's, a window per checkpoint and
// the entries; the blob is never held.
//
// The blob must be the layer's, verified against its digest (or verified
// as r yields it): the zTOC is only as true as the bytes it was built from.
// Build reads it to the end, checking every gzip member's trailer, so its
// TOC's CompressedSize is the blob's size.
//
// A stream that breaks, in the tar or in the gzip around it, is an error
// wrapping layer.ErrBroken, as with layer.BuildGzip; an error reading r is
// returned as it is, wrapped. A layer that holds what a zTOC cannot (see
// the package doc) is an error wrapping ErrNotRepresentable, and Build
// stops reading at the entry that it refuses. In every case there is no
// TOC: Build never returns part of one.
//
// The TOC returned reads back through Encode and Parse as itself, but for
// its Headers, which Parse does not read.
func Build(r io.Reader, opts BuildOptions) (*TOC, error) {
	if opts.SpanSize < 0 {
		return nil, fmt.Errorf("ztoc: span size %d is negative", opts.SpanSize)
	}
	t := &TOC{
		Version:   version09,
		BuildTool: cmp.Or(opts.BuildTool, DefaultBuildTool),
		SpanSize:  cmp.Or(opts.SpanSize, DefaultSpanSize),
	}
	src := &source{r: r}
	f := inflate.NewReader(src)
	sp := &spanner{f: f, span: t.SpanSize, h: sha256.New(), at: -1}
	f.OnBoundary = sp.boundary
	f.OnDrop = sp.hash
	err := walkTar(f, t)
	if err == nil {
		// On to the end of the last member, as SOCI's zinfo pass goes:
		// every trailer is checked, and every block boundary seen.
		if _, err = io.Copy(io.Discard, f); err != nil {
			err = fmt.Errorf("%w: after the tar's end: %w", layer.ErrBroken, err)
		}
	}
	switch {
	case src.err != nil:
		return nil, fmt.Errorf("read layer: %w", src.err)
	case err != nil:
		return nil, err
	case len(sp.cps) == 0:
		// The decoder ended cleanly, so it saw a block: not reached.
		return nil, fmt.Errorf("%w: no deflate block", layer.ErrBroken)
	}
	sp.finish()
	t.CompressedSize = src.n
	t.Checkpoints, t.SpanDigests = sp.cps, sp.digests
	if size := sizeBound(t); size > DefaultMaxSize {
		return nil, fmt.Errorf("%w: a zTOC of up to %d bytes, which may be over the %d Parse reads", ErrNotRepresentable, size, DefaultMaxSize)
	}
	return t, nil
}

// source counts the blob's bytes and keeps the first error reading them,
// so that a failed read is not taken for a broken layer.
type source struct {
	r   io.Reader
	n   int64
	err error
}

func (s *source) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.n += int64(n)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

// spanner places checkpoints as SOCI's zinfo builder places them, and
// hashes the compressed spans between them as the decoder passes over
// their bytes, so that no byte is read twice nor held.
type spanner struct {
	f       *inflate.Reader
	span    int64
	cps     []Checkpoint
	digests []digest.Digest
	h       hash.Hash // of the span of the last checkpoint
	at      int64     // the blob's bytes before at are in h; -1 before the first checkpoint
}

// boundary is the decoder's OnBoundary. SOCI's builder (zlib's zran, run
// with Z_BLOCK) adds a checkpoint where zlib stops after a gzip header or
// a block that is not a member's last, when nothing has been output yet
// or more than the span size has since the last checkpoint. Where zlib
// stops after a header is where the member's first block starts, which the
// decoder reports as a block boundary after the member's own; zinfo has
// no checkpoint at a member header, so those are passed by.
//
// That includes every boundary while the output is still empty, when a
// stream starts with empty blocks or members: readers resume from the last
// of them, but they are written as SOCI writes them, so that our zTOC of
// any layer is SOCI's byte for byte.
func (s *spanner) boundary(in int64, bits uint8, out int64, member bool) {
	if member {
		return
	}
	if n := len(s.cps); n > 0 && out != 0 && out-s.cps[n-1].Out <= s.span {
		return
	}
	// zran keeps one sliding window over the whole output, so a window
	// runs back across member boundaries, with zeros before the stream.
	w := make([]byte, WindowSize)
	hist := s.f.History()
	copy(w[WindowSize-len(hist):], hist)
	if len(s.cps) > 0 {
		// The span before ends at the first whole byte after the new
		// one's first bit; the decoder still holds that bit's byte.
		end := in
		if bits != 0 {
			end++
		}
		buf, off := s.f.Input()
		s.hash(buf[:end-off], off)
		s.cut()
	}
	// The new span starts at the byte holding its first bit: with bits,
	// the byte the last span ended with, hashed again.
	s.at = in
	s.cps = append(s.cps, Checkpoint{Out: out, In: in, Bits: bits, Window: w})
}

// hash adds to the current span the part of b, the blob's bytes from off
// on, that it does not hold yet. It is also the decoder's OnDrop.
func (s *spanner) hash(b []byte, off int64) {
	if s.at < 0 {
		return // the gzip header before the first checkpoint is in no span
	}
	if skip := s.at - off; skip < int64(len(b)) {
		s.h.Write(b[max(skip, 0):])
		s.at = off + int64(len(b))
	}
}

// cut ends the current span.
func (s *spanner) cut() {
	var sum [sha256.Size]byte
	s.digests = append(s.digests, digest.NewDigestFromBytes(digest.SHA256, s.h.Sum(sum[:0])))
	s.h.Reset()
}

// finish ends the last span at the end of the blob, once the decoder has
// read all of it.
func (s *spanner) finish() {
	buf, off := s.f.Input()
	s.hash(buf, off)
	s.cut()
}
