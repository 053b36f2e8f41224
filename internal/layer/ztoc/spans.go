package ztoc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/layer"
)

// MaxSpan bounds the compressed bytes of one span that a read fetches and
// holds. SOCI's spans hold about 4 MiB of output; a span over this is a
// hostile zTOC, which would otherwise make one read allocate what it says.
const MaxSpan = 64 << 20

// spanReader yields a gzip layer's compressed bytes from offset pos on
// to the end of span last, one whole span at a time, each fetched by range and checked against its
// zTOC digest before the decoder sees a byte of it. It holds one span's
// bytes at a time and fetches the next only when the decoder asks for
// more.
type spanReader struct {
	ctx   context.Context
	toc   *TOC
	src   blobio.ReaderAt
	next  int   // next span to fetch
	last  int   // last span to fetch: io.EOF after it
	ended bool  // io.EOF was returned: the decoder takes no more input
	pos   int64 // compressed offset of buf's first byte
	buf   []byte
	held  int64 // the size of the span buf is part of
}

func (s *spanReader) Read(p []byte) (int, error) {
	if len(s.buf) == 0 {
		if s.next > s.last || s.next >= len(s.toc.Checkpoints) {
			s.ended = true
			return 0, io.EOF
		}
		s.buf, s.held = nil, 0 // let the spent span go before the next is fetched
		if err := s.load(s.next); err != nil {
			return 0, err
		}
		s.next++
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	s.pos += int64(n)
	return n, nil
}

// load fetches and checks span i, and keeps the part of it from pos on:
// SOCI's spans overlap by the byte that holds bits of both (see
// TOC.SpanRange), which the previous span has already yielded.
func (s *spanReader) load(i int) error {
	start, end := s.toc.SpanRange(i)
	switch {
	case start < 0 || end <= start || end > s.toc.CompressedSize:
		return fmt.Errorf("%w: span %d [%d,%d) is outside the blob's %d bytes", ErrInvalid, i, start, end, s.toc.CompressedSize)
	case end-start > MaxSpan:
		return fmt.Errorf("%w: span %d [%d,%d) is over %d bytes", ErrInvalid, i, start, end, MaxSpan)
	case s.pos < start || s.pos > end:
		return fmt.Errorf("%w: span %d [%d,%d) does not continue from offset %d", ErrInvalid, i, start, end, s.pos)
	}
	want := s.toc.SpanDigests[i]
	b := make([]byte, end-start)
	err := readChecked(s.ctx, s.src, b, start, func(b []byte) error {
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != want.Encoded() {
			return fmt.Errorf("span %d [%d,%d): %w", i, start, end, layer.ErrCorrupt)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, layer.ErrCorrupt) {
			return err
		}
		return fmt.Errorf("fetch span %d [%d,%d): %w", i, start, end, err)
	}
	s.buf, s.held = b[s.pos-start:], int64(len(b))
	return nil
}

// readChecked reads all of p from off and checks it, through the source's
// own ReadCheckedAt when it has one, so that a cache drops bytes that
// fail and fetches them afresh next time instead of serving them again.
func readChecked(ctx context.Context, src blobio.ReaderAt, p []byte, off int64, check func([]byte) error) error {
	var n int
	var err error
	if cs, ok := src.(layer.CheckedSource); ok {
		n, err = cs.ReadCheckedAt(ctx, p, off, check)
	} else {
		n, err = src.ReadAt(ctx, p, off)
		if n == len(p) && (err == nil || err == io.EOF) {
			err = check(p)
		}
	}
	switch {
	case err != nil && err != io.EOF:
		return err
	case n < len(p):
		return io.ErrUnexpectedEOF
	}
	return nil
}
