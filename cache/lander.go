package cache

import (
	"github.com/imgfs/imgfs/cache/internal/blobfsm"
	"github.com/imgfs/imgfs/internal/byterange"
)

// lander writes and lands one run's chunks, in order. When the run's file
// takes O_DIRECT writes it does so on a goroutine of its own, so that the
// fetch reads the next chunk from the socket while the last one is
// written: an O_DIRECT write waits for the disk. A write into the page
// cache does not, and there a hand-off per chunk cost a fill's parallel
// runs more than it saved (see Performance in README.md), so there put
// writes and lands in the caller.
type lander struct {
	b      *Blob
	run    blobfsm.Run
	df     *dataFile
	queue  chan landing  // nil: put lands in the caller
	failed chan struct{} // closed after err is set
	done   chan struct{} // closed when the goroutine has finished
	err    error
}

type landing struct {
	c   int64
	cr  byterange.Range
	buf *[]byte
}

// landQueue is how many read chunks may wait for the writer: one being
// written and one waiting keeps both the socket and the disk busy.
const landQueue = 1

func (b *Blob) startLander(run blobfsm.Run, df *dataFile) *lander {
	l := &lander{b: b, run: run, df: df, failed: make(chan struct{}), done: make(chan struct{})}
	if !df.direct.active() {
		close(l.done)
		return l
	}
	l.queue = make(chan landing, landQueue)
	go l.loop()
	return l
}

func (l *lander) loop() {
	defer close(l.done)
	for ld := range l.queue {
		if l.err != nil {
			chunkPool.Put(ld.buf) // draining after a failed write
			continue
		}
		l.write(ld)
	}
}

// write writes and lands one chunk, or records why it could not.
func (l *lander) write(ld landing) {
	if err := l.df.writeChunk(*ld.buf, ld.cr, l.run.Writeback); err != nil {
		chunkPool.Put(ld.buf)
		l.err = err
		close(l.failed)
		return
	}
	l.b.land(l.run, ld.c, ld.cr, ld.buf)
}

// put hands chunk c, read into buf, to the writer. It fails with the
// writer's error once a write has failed; buf is the lander's either way.
func (l *lander) put(c int64, cr byterange.Range, buf *[]byte) error {
	if l.queue == nil {
		l.write(landing{c: c, cr: cr, buf: buf})
		return l.err
	}
	select {
	case l.queue <- landing{c: c, cr: cr, buf: buf}:
		return nil
	case <-l.failed:
		chunkPool.Put(buf)
		return l.err
	}
}

// finish waits until every chunk put is written and landed, and returns
// the first write error. It must be called once, and before the run's
// file is released.
func (l *lander) finish() error {
	if l.queue != nil {
		close(l.queue)
	}
	<-l.done
	return l.err
}
