package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// fetchPlan says how scheduleLocked cuts missing chunks into requests and
// what happens as they land.
type fetchPlan struct {
	// runChunks is the most chunks one range request covers: small enough
	// that several run in parallel, large enough that per-request latency
	// does not dominate.
	runChunks int64
	// writeback starts writing landed chunks to disk at once. It suits
	// callers that wait for the commit, whose fsync then has little left;
	// for readers it would only take CPU from the reads, and the commit's
	// fsync does the writing later, on the low-priority hashing thread.
	writeback bool
}

var (
	readPlan     = fetchPlan{runChunks: 16}
	fillPlan     = fetchPlan{runChunks: 8, writeback: true}
	prefetchPlan = fetchPlan{runChunks: 8}
)

// maxUnhashed bounds the landed chunks a blob keeps in memory for the
// hasher, which must take chunks in order while they land in any order.
const maxUnhashed = 8

var chunkPool = sync.Pool{New: func() any { return new([]byte) }}

// getChunkBuf returns a pooled buffer of at least n bytes.
func getChunkBuf(n int64) *[]byte {
	bp := chunkPool.Get().(*[]byte)
	if int64(cap(*bp)) < n {
		*bp = make([]byte, n)
	}
	*bp = (*bp)[:n]
	return bp
}

// scheduleLocked makes sure every chunk overlapping r is present or being
// fetched, starting fetches of at most runChunks chunks each for the
// missing ones. Only ErrOffline can fail it. b.mu must be held.
func (b *Blob) scheduleLocked(r Range, plan fetchPlan) error {
	if b.complete || r.Len() <= 0 {
		return nil
	}
	cs := b.store.opts.ChunkSize
	var run []int64
	flush := func() error {
		if len(run) == 0 {
			return nil
		}
		if b.fetcher == nil {
			return fmt.Errorf("%w: blob %s bytes %d-%d", ErrOffline, b.desc.Digest, run[0]*cs, b.chunkRange(run[len(run)-1]).End-1)
		}
		flights := make([]*flight, len(run))
		for i, c := range run {
			flights[i] = &flight{done: make(chan struct{}), n: b.chunkRange(c).Len()}
			b.flights[c] = flights[i]
		}
		b.users++ // released by the fetch
		b.store.bg.Add(1)
		go b.fetchRun(run[0], run[0]+int64(len(run)), flights, b.fetcher, plan.writeback)
		run = nil
		return nil
	}
	for c := r.Start / cs; c*cs < r.End; c++ {
		_, inFlight := b.flights[c]
		if inFlight || b.present.Contains(b.chunkRange(c)) {
			if err := flush(); err != nil {
				return err
			}
			continue
		}
		run = append(run, c)
		if int64(len(run)) == plan.runChunks {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// flightsLocked returns the fetches in progress for chunks overlapping r,
// in order. b.mu must be held.
func (b *Blob) flightsLocked(r Range) []*flight {
	var out []*flight
	cs := b.store.opts.ChunkSize
	for c := r.Start / cs; c*cs < r.End; c++ {
		if fl, ok := b.flights[c]; ok {
			out = append(out, fl)
		}
	}
	return out
}

// fetchRun fetches chunks [c0, c1) in one range request and lands them one
// by one, so that readers of the first chunk need not wait for the last.
// It runs detached from any reader: a reader that gives up does not cancel
// a fetch others may be waiting on. A stall is ended by the idle timeout.
func (b *Blob) fetchRun(c0, c1 int64, flights []*flight, f Fetcher, writeback bool) {
	defer b.store.bg.Done()
	defer b.Close()
	s := b.store
	landed := 0
	err := func() error {
		timeout := s.opts.FetchTimeout
		select {
		case s.slots <- struct{}{}:
			defer func() { <-s.slots }()
		case <-time.After(timeout):
			return fmt.Errorf("%w: no connection free after %s", ErrFetchTimeout, timeout)
		}
		ctx, cancel := context.WithCancelCause(s.life)
		defer cancel(nil)
		idle := time.AfterFunc(timeout, func() {
			cancel(fmt.Errorf("%w: no bytes for %s", ErrFetchTimeout, timeout))
		})
		defer idle.Stop()

		first, last := b.chunkRange(c0), b.chunkRange(c1-1)
		s.stats.rangeRequests.Add(1)
		body, err := f.FetchRange(ctx, b.desc, first.Start, last.End-first.Start)
		if err != nil {
			return causeOr(ctx, err)
		}
		defer body.Close()
		in := &idleReader{r: body, idle: idle, timeout: timeout}
		for c := c0; c < c1; c++ {
			cr := b.chunkRange(c)
			bp := getChunkBuf(cr.Len())
			_, err := io.ReadFull(in, *bp)
			if err == nil {
				s.stats.fetchedBytes.Add(cr.Len())
				_, err = b.file.WriteAt(*bp, cr.Start)
			}
			if err != nil {
				chunkPool.Put(bp)
				return causeOr(ctx, err)
			}
			if writeback {
				startWriteback(b.file, cr)
			}
			b.land(c, flights[c-c0], bp)
			landed++
		}
		return nil
	}()
	if err != nil {
		s.stats.fetchErrors.Add(1)
		err = fmt.Errorf("fetch %s bytes %d-%d: %w", b.desc.Digest, b.chunkRange(c0).Start, b.chunkRange(c1-1).End-1, err)
		s.log.Warn("fetch failed", "digest", b.desc.Digest, "error", err)
		for i := landed; i < len(flights); i++ {
			b.fail(c0+int64(i), flights[i], err)
		}
	}
	b.saveState()
}

// causeOr prefers the reason ctx was cancelled (such as the idle timeout)
// over the transport's generic "context canceled".
func causeOr(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
		return cause
	}
	return err
}

// land records that chunk c is present and wakes its waiters. Its bytes,
// still in buf, are kept for the hasher when it will soon need them, which
// saves reading them back; otherwise buf goes back to the pool.
func (b *Blob) land(c int64, fl *flight, buf *[]byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.flights[c] == fl {
		delete(b.flights, c)
	}
	close(fl.done)
	cr := b.chunkRange(c)
	b.present.Add(cr)
	near := cr.Start >= b.hashOff && cr.Start < b.hashOff+maxUnhashed*b.store.opts.ChunkSize
	if !b.complete && near && len(b.unhashed) < maxUnhashed {
		b.unhashed[cr.Start] = buf
	} else {
		chunkPool.Put(buf)
	}
	b.startHashingLocked()
	b.startSyncLocked()
}

// startSyncLocked starts flushing the blob to disk as soon as its last
// chunk has landed, while the hasher may still be catching up, so that the
// fsync commit needs overlaps the hashing instead of following it. b.mu
// must be held.
func (b *Blob) startSyncLocked() {
	if b.syncing || b.complete || b.present.Size() != b.desc.Size {
		return
	}
	b.syncing = true
	b.users++
	b.store.bg.Add(1)
	go func() {
		defer b.store.bg.Done()
		defer b.Close()
		// Best effort: commit syncs again and reports any error.
		_ = b.file.Sync()
	}()
}

// fail records that fetching chunk c failed and wakes its waiters with err.
func (b *Blob) fail(c int64, fl *flight, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.flights[c] == fl {
		delete(b.flights, c)
	}
	fl.err = err
	close(fl.done)
}

// errFetchFailed marks a wait that ended because a fetch failed, which a
// reader with time left may try again.
var errFetchFailed = errors.New("fetch failed")

// wait blocks until every flight has landed, ctx is done, or deadline
// fires, so that no read hangs forever.
func (b *Blob) wait(ctx context.Context, flights []*flight, deadline <-chan time.Time) error {
	for _, fl := range flights {
		select {
		case <-fl.done:
			if fl.err != nil {
				return fmt.Errorf("%w: %w", errFetchFailed, fl.err)
			}
		case <-ctx.Done():
			return fmt.Errorf("read %s: %w", b.desc.Digest, ctx.Err())
		case <-deadline:
			return fmt.Errorf("read %s: %w after %s", b.desc.Digest, ErrFetchTimeout, b.store.opts.FetchTimeout)
		}
	}
	return nil
}

// idleReader pushes the idle deadline back whenever bytes arrive.
type idleReader struct {
	r       io.Reader
	idle    *time.Timer
	timeout time.Duration
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.idle.Reset(r.timeout)
	}
	return n, err
}

// startHashingLocked starts a hashLoop if the present prefix has grown past
// what was hashed and none is running. The loop holds the blob open, so it
// can finish and commit after the last reader has gone. b.mu must be held.
func (b *Blob) startHashingLocked() {
	if b.hashing || b.complete || b.present.PrefixEnd() <= b.hashOff {
		return
	}
	b.hashing = true
	b.users++
	b.store.bg.Add(1)
	go b.hashLoop()
}
