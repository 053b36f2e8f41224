package ztoc

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/layer"
	"github.com/imgfs/imgfs/internal/layer/inflate"
	"github.com/imgfs/imgfs/internal/oci"
)

// zLayer serves a gzip layer's files from its zTOC: each read resumes
// inflating at the last checkpoint before it, on spans fetched by range
// and checked against the zTOC's span digests. Between reads it keeps a
// few idle decoders where reads left them, so that sequential reads
// continue rather than decode their span again; a read takes one for
// itself, so no two reads share one.
type zLayer struct {
	toc     *TOC
	idx     *layer.Index
	src     blobio.ReaderAt
	cursors idleCursors
}

// NewLayer returns the layer.Layer that serves the gzip layer blob src,
// of blobSize bytes, through its parsed zTOC toc. The zTOC must describe
// that blob: a compressed size other than blobSize is refused with an
// error wrapping ErrInvalid. Every span is checked against its digest
// before any byte decoded from it is served; a mismatch is an error
// wrapping layer.ErrCorrupt.
//
// The span digests cover the compressed bytes only. The windows, bits
// and offsets, and the entries, are taken on the zTOC's word: a wrong
// window decodes wrong bytes that no digest catches (at most a CRC-32 at
// the end of a later gzip member). So the zTOC must be as trusted as the
// layer, fetched by a digest from a verified manifest, as SOCI's index
// names it. Against a hostile one, Parse and NewLayer promise only that
// it cannot crash imgfs, nor make a read hold more than a span of MaxSpan
// bytes.
//
// The returned index has the zTOC's entries and sizes but no checkpoints:
// those of the zTOC cover SOCI's spans, not layer's (see TOC.SpanRange),
// so they stay with the TOC.
func NewLayer(toc *TOC, blobSize int64, src blobio.ReaderAt) (layer.Layer, error) {
	switch {
	case toc == nil:
		return nil, fmt.Errorf("%w: no zTOC", ErrInvalid)
	case toc.CompressedSize != blobSize:
		return nil, fmt.Errorf("%w: compressed size %d, but the layer blob has %d bytes", ErrInvalid, toc.CompressedSize, blobSize)
	case len(toc.Checkpoints) == 0 || len(toc.Checkpoints) != len(toc.SpanDigests):
		// Parse never returns such a TOC; one made by hand would make
		// the span lookups index out of range.
		return nil, fmt.Errorf("%w: %d checkpoints for %d span digests", ErrInvalid, len(toc.Checkpoints), len(toc.SpanDigests))
	}
	idx := &layer.Index{
		Format:   oci.FormatGzip,
		BlobSize: blobSize,
		TarSize:  toc.UncompressedSize,
		Entries:  toc.Entries,
	}
	return &zLayer{toc: toc, idx: idx, src: src}, nil
}

func (l *zLayer) Index() *layer.Index { return l.idx }

func (l *zLayer) ReadFile(ctx context.Context, i int, p []byte, off int64) (n int, err error) {
	e, err := l.entry(i, off)
	if err != nil {
		return 0, err
	}
	if off >= e.Size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	want := p[:min(int64(len(p)), e.Size-off)]
	// The decoder is fed hostile windows and bits; it is meant not to
	// panic on them, and this keeps a missed case from crashing a mount.
	defer func() {
		if r := recover(); r != nil {
			n, err = 0, fmt.Errorf("read %q at %d: %w: decoding panicked (%v)", e.Name, off, ErrInvalid, r)
		}
	}()
	n, err = l.readStream(ctx, want, e.DataOffset+off)
	if n == len(want) {
		err = nil
	} else if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		// No byte is served from a read that failed: some of them may
		// have come before a span that did not verify, but a partial
		// read would hide the corruption behind a short count.
		return 0, fmt.Errorf("read %q at %d: %w", e.Name, off, err)
	}
	if len(want) < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// entry checks a ReadFile call's arguments, as layer's own layers do:
// entry i must be a regular file, and off not negative.
func (l *zLayer) entry(i int, off int64) (*layer.Entry, error) {
	if i < 0 || i >= len(l.idx.Entries) {
		return nil, fmt.Errorf("ztoc: no entry %d", i)
	}
	e := &l.idx.Entries[i]
	switch {
	case e.Bad != "":
		return nil, fmt.Errorf("%w: %q: %s", layer.ErrBadEntry, e.Name, e.Bad)
	case e.Type != layer.TypeRegular:
		return nil, fmt.Errorf("%w: %q is a %s", layer.ErrNotRegular, e.Name, e.Type)
	case e.Sparse:
		// SOCI's toc builder records a sparse file's size, not where
		// its holes are; its bytes cannot be laid out from the zTOC.
		return nil, fmt.Errorf("%w: %q is a sparse file", errors.ErrUnsupported, e.Name)
	case off < 0:
		return nil, fmt.Errorf("ztoc: negative offset %d", off)
	}
	return e, nil
}

// readStream reads all of p from uncompressed offset at, through a
// decoder already positioned at or before at in the same span when a
// sequential read left one, else one resumed at the last checkpoint at or
// before at; it decodes up to at and copies out, fetching span after
// span as the decoder asks for them.
func (l *zLayer) readStream(ctx context.Context, p []byte, at int64) (int, error) {
	k := l.checkpointFor(at)
	// The decoder reads ahead, up to hundreds of KiB of output; the
	// spans past the one holding p's last byte are cut off, so that a
	// small read fetches only what it needs. A span's bytes run to the
	// byte holding the next span's first bit, so they hold every bit of
	// its own output.
	last := l.checkpointFor(at + int64(len(p)) - 1)
	c := l.cursors.take(at, l.toc.Checkpoints[k].Out, at+int64(len(p)))
	if c == nil {
		var err error
		if c, err = l.newCursor(k); err != nil {
			return 0, err
		}
	}
	c.spans.ctx = ctx
	if !c.spans.ended {
		// A cut-off decoder takes no more input: its last must stay
		// what it was, for reaches to say what it can still decode.
		c.spans.last = max(c.spans.last, last)
	}
	if _, err := io.CopyN(io.Discard, c, at-c.pos); err != nil {
		return 0, err
	}
	n, err := io.ReadFull(c, p)
	if err == nil {
		l.cursors.put(c)
	}
	return n, err
}

// newCursor resumes inflating at checkpoint k.
func (l *zLayer) newCursor(k int) (*cursor, error) {
	cp := &l.toc.Checkpoints[k]
	if len(cp.Window) > inflate.WindowSize {
		return nil, fmt.Errorf("%w: checkpoint %d has a window of %d bytes", ErrInvalid, k, len(cp.Window))
	}
	spans := &spanReader{toc: l.toc, src: l.src, next: k, last: k, pos: cp.In}
	dec, err := inflate.Resume(spans, inflate.Checkpoint{In: cp.In, Bits: cp.Bits, Out: cp.Out, Window: cp.Window})
	if err != nil {
		return nil, err
	}
	return &cursor{spans: spans, dec: dec, pos: cp.Out}, nil
}

// checkpointFor returns the last checkpoint at or before uncompressed
// offset out; Parse keeps them sorted, with the first at 0. Of several at
// output 0 it returns the last, as SOCI's extract does, so a cursor never
// starts at an earlier one, whose span holds only empty blocks.
func (l *zLayer) checkpointFor(out int64) int {
	cps := l.toc.Checkpoints
	lo, hi := 0, len(cps)
	for hi-lo > 1 {
		m := (lo + hi) / 2
		if cps[m].Out <= out {
			lo = m
		} else {
			hi = m
		}
	}
	return lo
}
