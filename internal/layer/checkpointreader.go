package layer

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/layer/inflate"
	"github.com/imgfs/imgfs/internal/oci"
)

// checkpointReader opens the uncompressed stream of a gzip or zstd layer
// at any offset: it starts decompressing at the nearest checkpoint before
// it, fetching compressed spans from the blob one at a time and checking
// each against the index before the decoder sees it. A few positioned
// decoders are kept, so sequential reads continue where the last stopped.
type checkpointReader struct {
	idx *Index
	src blobio.ReaderAt

	mu   sync.Mutex
	idle []*cursor // most recently released last
}

const maxIdleCursors = 4

func newCheckpointReader(idx *Index, src blobio.ReaderAt) *checkpointReader {
	return &checkpointReader{idx: idx, src: src}
}

// cursor is a decoder positioned at pos in the uncompressed stream.
type cursor struct {
	spans *spanReader
	dec   io.Reader
	pos   int64
}

func (c *cursor) Read(p []byte) (int, error) {
	n, err := c.dec.Read(p)
	c.pos += int64(n)
	return n, err
}

func (r *checkpointReader) open(ctx context.Context, off int64) (io.Reader, error) {
	k := r.idx.checkpointFor(off)
	start := r.idx.Checkpoints[k].Out
	r.mu.Lock()
	var cur *cursor
	for i := len(r.idle) - 1; i >= 0; i-- {
		if c := r.idle[i]; c.pos <= off && c.pos >= start {
			cur = c
			r.idle = append(r.idle[:i], r.idle[i+1:]...)
			break
		}
	}
	r.mu.Unlock()
	if cur == nil {
		var err error
		if cur, err = r.newCursor(k); err != nil {
			return nil, err
		}
	}
	cur.spans.ctx = ctx
	if skip := off - cur.pos; skip > 0 {
		if _, err := io.CopyN(io.Discard, cur, skip); err != nil {
			return nil, err
		}
	}
	return cur, nil
}

func (r *checkpointReader) release(rd io.Reader) {
	c, ok := rd.(*cursor)
	if !ok {
		return
	}
	c.spans.ctx = nil
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.idle) == maxIdleCursors {
		r.idle = r.idle[1:]
	}
	r.idle = append(r.idle, c)
}

func (r *checkpointReader) newCursor(k int) (*cursor, error) {
	cp := &r.idx.Checkpoints[k]
	sr := &spanReader{idx: r.idx, src: r.src, next: k}
	c := &cursor{spans: sr, pos: cp.Out}
	switch r.idx.Format {
	case oci.FormatGzip:
		f, err := inflate.Resume(sr, cp.inflatePoint())
		if err != nil {
			return nil, err
		}
		c.dec = f
	case oci.FormatZstd:
		d, err := newZstdDecoder(sr)
		if err != nil {
			return nil, err
		}
		c.dec = d
	default:
		return nil, fmt.Errorf("layer: no checkpoints for %s", r.idx.Format)
	}
	return c, nil
}

// spanReader yields the compressed bytes from a checkpoint on, a whole
// verified span at a time.
type spanReader struct {
	ctx  context.Context
	idx  *Index
	src  blobio.ReaderAt
	next int // next span to fetch
	buf  []byte
}

func (s *spanReader) Read(p []byte) (int, error) {
	if len(s.buf) == 0 {
		if s.next >= len(s.idx.Checkpoints) {
			return 0, io.EOF
		}
		if err := s.load(s.next); err != nil {
			return 0, err
		}
		s.next++
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

func (s *spanReader) load(i int) error {
	c := &s.idx.Checkpoints[i]
	end := s.idx.spanEnd(i)
	if end < c.In || end-c.In > 1<<30 {
		return fmt.Errorf("layer: span %d has a bad extent", i)
	}
	b := make([]byte, end-c.In)
	err := readChecked(s.ctx, s.src, b, c.In, func(b []byte) error {
		if sha256.Sum256(b) != c.SpanDigest {
			return fmt.Errorf("span %d [%d,%d): %w", i, c.In, end, ErrCorrupt)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			return err
		}
		return fmt.Errorf("fetch span %d [%d,%d): %w", i, c.In, end, err)
	}
	s.buf = b
	return nil
}
