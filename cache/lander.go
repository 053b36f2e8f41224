package cache

import "io"

// lander writes and lands one run's chunks, in order, on a goroutine of
// its own, so that the fetch reads the next chunk from the socket while
// the last one is written: an O_DIRECT write waits for the disk.
type lander struct {
	b      *Blob
	run    fetchRun
	df     *dataFile
	queue  chan landing
	failed chan struct{} // closed after err is set
	done   chan struct{} // closed when the goroutine has finished
	err    error
}

type landing struct {
	c   int64
	cr  Range
	buf *[]byte
}

// landQueue is how many read chunks may wait for the writer: one being
// written and one waiting keeps both the socket and the disk busy.
const landQueue = 1

func (b *Blob) startLander(run fetchRun, df *dataFile) *lander {
	l := &lander{b: b, run: run, df: df, queue: make(chan landing, landQueue),
		failed: make(chan struct{}), done: make(chan struct{})}
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
		if err := l.df.writeChunk(*ld.buf, ld.cr, l.run.writeback); err != nil {
			chunkPool.Put(ld.buf)
			l.err = err
			close(l.failed)
			continue
		}
		l.b.land(l.run, ld.c, ld.cr, ld.buf)
	}
}

// put hands chunk c, read into buf, to the writer. It fails with the
// writer's error once a write has failed; buf is the lander's either way.
func (l *lander) put(c int64, cr Range, buf *[]byte) error {
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
	close(l.queue)
	<-l.done
	return l.err
}

// readChunk reads the next chunk of a run's body into a pooled buffer.
func (b *Blob) readChunk(in io.Reader, cr Range) (*[]byte, error) {
	bp := getChunkBuf(cr.Len())
	if _, err := io.ReadFull(in, *bp); err != nil {
		chunkPool.Put(bp)
		return nil, err
	}
	b.store.stats.fetchedBytes.Add(cr.Len())
	return bp, nil
}
