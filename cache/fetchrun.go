package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

var (
	// readPlan's runs are as long as half the largest readahead window
	// (64 MiB of 1 MiB chunks), the step a sequential reader tops up by,
	// so each top-up is one request: a request costs the registry CPU
	// and, behind a CDN redirect, a round trip, beyond its bytes.
	readPlan = fetchPlan{class: classRead, runChunks: 32}
	// fillPlan serves fills and reads waiting for the verdict: they need
	// every chunk, so they keep a bounded number of runs in flight and
	// schedule more as those land.
	fillPlan     = fetchPlan{class: classBulk, runChunks: 8, writeback: true}
	prefetchPlan = fetchPlan{class: classPrefetch, runChunks: 8, maxRuns: 1}
)

// bulkPlan is fillPlan bounded by the store's connections.
func (s *Store) bulkPlan(writeback bool) fetchPlan {
	p := fillPlan
	p.maxRuns = s.opts.MaxConnections
	p.writeback = writeback
	return p
}

// maxUnhashed bounds the landed chunks a blob keeps in memory for the
// hasher, which must take chunks in order while they land in any order.
// A sequential reader's readahead keeps several runs in flight, which land
// side by side; 24 chunks covers most of that spread, so that few chunks
// are read back from the file to be hashed.
const maxUnhashed = 24

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

// fetchRun fetches the run's chunks in one range request into df and lands
// them one by one, so that readers of the first chunk need not wait for
// the last. It runs detached from any reader: a reader that gives up does
// not cancel a fetch others may be waiting on. ctx ends with the
// generation or the store; a stall is ended by the idle timeout, which
// starts only when the request is sent: waiting for a connection is
// queueing, not a stall.
func (b *Blob) fetchRun(ctx context.Context, run fetchRun, df *dataFile, f Fetcher) {
	defer df.release()
	s := b.store
	rr := Range{run.c0 * s.opts.ChunkSize, min(run.c1*s.opts.ChunkSize, b.desc.Size)}
	err := func() error {
		select {
		case s.slots <- struct{}{}:
			defer func() { <-s.slots }()
		case <-ctx.Done():
			return ErrClosed
		}
		timeout := s.opts.FetchTimeout
		ctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		idle := time.AfterFunc(timeout, func() {
			cancel(fmt.Errorf("%w: no bytes for %s", ErrFetchTimeout, timeout))
		})
		defer idle.Stop()

		s.stats.rangeRequests.Add(1)
		body, err := f.FetchRange(ctx, b.desc, rr.Start, rr.Len())
		var whole *WholeBlob
		if errors.As(err, &whole) {
			defer whole.Body.Close()
			return b.landWhole(ctx, run, df, &idleReader{r: whole.Body, idle: idle, timeout: timeout})
		}
		if err != nil {
			return causeOr(ctx, err)
		}
		defer body.Close()
		in := &idleReader{r: body, idle: idle, timeout: timeout}
		for c := run.c0; c < run.c1; c++ {
			cr := Range{c * s.opts.ChunkSize, min((c+1)*s.opts.ChunkSize, b.desc.Size)}
			bp := getChunkBuf(cr.Len())
			_, err := io.ReadFull(in, *bp)
			if err == nil {
				s.stats.fetchedBytes.Add(cr.Len())
				_, err = df.f.WriteAt(*bp, cr.Start)
			}
			if err != nil {
				chunkPool.Put(bp)
				return causeOr(ctx, err)
			}
			if run.writeback {
				startWriteback(df.f, cr)
			}
			b.land(run, c, cr, bp)
		}
		return nil
	}()
	if err != nil {
		// A run cut short by the end of its generation or of the store is
		// not a failure of the source.
		if ctx.Err() == nil {
			s.stats.fetchErrors.Add(1)
			err = fmt.Errorf("fetch %s bytes %d-%d from %s: %w", b.desc.Digest, rr.Start, rr.End-1, fetcherName(f), err)
			s.log.Warn("fetch failed", "digest", b.desc.Digest, "error", err)
		}
		b.mu.Lock()
		b.applyLocked(b.m.fetchFailed(run.gen, run.id, err, b.store.now()))
		b.mu.Unlock()
	}
}

// causeOr prefers the reason ctx was cancelled (such as the idle timeout)
// over the transport's generic "context canceled".
func causeOr(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
		return cause
	}
	return err
}

// land tells the machine chunk c of run is written. Its bytes, still in
// buf, are kept for the hasher when it will soon need them, which saves
// reading them back; otherwise buf goes back to the pool.
func (b *Blob) land(run fetchRun, c int64, cr Range, buf *[]byte) {
	b.mu.Lock()
	a := b.m.landed(run.gen, run.id, c, b.store.now())
	near := cr.Start >= b.m.hashedTo && cr.Start < b.m.hashedTo+maxUnhashed*b.store.opts.ChunkSize
	if a.wake && near && b.m.phase <= phaseVerifying && len(b.unhashed) < maxUnhashed {
		b.unhashed[cr.Start] = buf
	} else {
		chunkPool.Put(buf)
	}
	// The machine asks for hashing when this chunk extends the present
	// prefix past the digest: hash here if the buffers are kept.
	inline := a.hash && b.keptLocked(a.hashFrom)
	gen, h, from, to := b.m.gen, b.hasher, a.hashFrom, a.hashTo
	if inline {
		a.hash = false
	}
	b.applyLocked(a)
	b.mu.Unlock()
	if inline {
		b.hashInline(gen, h, from, to)
	}
	if a.save {
		// Off the fetch's path: saving waits for the data to reach the disk.
		b.goBackground(b.trySaveState)
	}
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
