package ztoc

import (
	"sync"

	"github.com/imgfs/imgfs/internal/layer/inflate"
)

// maxIdleCursors bounds the decoders a layer keeps between reads: each
// holds inflate's buffers (about 350 KiB) and up to one span.
const maxIdleCursors = 4

// maxIdleSpan bounds the span an idle decoder may hold, so that a layer's
// idle decoders hold tens of MiB at most, not maxIdleCursors times
// MaxSpan. SOCI's spans of 4 MiB of output are well under it.
const maxIdleSpan = 8 << 20

// cursor is a decoder positioned at pos in the uncompressed stream.
type cursor struct {
	spans *spanReader
	dec   *inflate.Reader
	pos   int64
}

func (c *cursor) Read(p []byte) (int, error) {
	n, err := c.dec.Read(p)
	c.pos += int64(n)
	return n, err
}

// idleCursors holds the decoders that reads have left, most recently
// left last, for later reads to continue from.
type idleCursors struct {
	mu   sync.Mutex
	idle []*cursor
}

// reaches reports whether c can decode up to uncompressed offset end:
// always, unless its input was cut off at the end of span last (inflate
// takes an io.EOF from its input as final), when it still holds the
// output up to the start of the next span.
func (c *cursor) reaches(end int64) bool {
	s := c.spans
	return !s.ended || s.last+1 >= len(s.toc.Checkpoints) || end <= s.toc.Checkpoints[s.last+1].Out
}

// take removes and returns an idle cursor at or before at, at or after
// from (the checkpoint a new decoder would start at, so that continuing
// never decodes more than starting afresh), and able to reach end; or
// nil.
func (ic *idleCursors) take(at, from, end int64) *cursor {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	for i := len(ic.idle) - 1; i >= 0; i-- {
		if c := ic.idle[i]; c.pos <= at && c.pos >= from && c.reaches(end) {
			ic.idle = append(ic.idle[:i], ic.idle[i+1:]...)
			return c
		}
	}
	return nil
}

// put keeps c for a later read, unless the span it holds is too big to
// keep idle.
func (ic *idleCursors) put(c *cursor) {
	if c.spans.held > maxIdleSpan {
		return
	}
	c.spans.ctx = nil // the read's context ends with it
	ic.mu.Lock()
	defer ic.mu.Unlock()
	if len(ic.idle) == maxIdleCursors {
		ic.idle = ic.idle[1:]
	}
	ic.idle = append(ic.idle, c)
}
