package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/imgfs/imgfs/cache/internal/blobfsm"
	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/byterange"
	"github.com/imgfs/imgfs/internal/errdefs"
)

var (
	// readPlan's runs are as long as half the largest readahead window
	// (64 MiB of 1 MiB chunks), the step a sequential reader tops up by,
	// so each top-up is one request: a request costs the registry CPU
	// and, behind a CDN redirect, a round trip, beyond its bytes.
	readPlan = blobfsm.Plan{Class: blobfsm.ClassRead, RunChunks: 32}
	// readStreamPlan serves a reader whose readahead has grown to the full
	// window: one stream run per missing stretch, which its reads extend
	// chunk by chunk (see blobfsm.Plan.Stream).
	readStreamPlan = blobfsm.Plan{Class: blobfsm.ClassRead, RunChunks: 32, Stream: true}
	// fillPlan serves fills and reads waiting for the verdict: they need
	// every chunk, so they keep a bounded number of runs in flight and
	// schedule more as those land.
	fillPlan     = blobfsm.Plan{Class: blobfsm.ClassBulk, RunChunks: 8, Writeback: true}
	prefetchPlan = blobfsm.Plan{Class: blobfsm.ClassPrefetch, RunChunks: 8, MaxRuns: 1}
	// exactPlan serves reads through a layer index (an exact RangeReader):
	// the missing bytes they ask for, in requests of at most 8 MiB
	// (blobfsm's exact.go).
	exactPlan = blobfsm.Plan{Class: blobfsm.ClassExact, RunChunks: 8}
)

// bulkPlan is fillPlan bounded by the store's connections.
func (s *Store) bulkPlan(writeback bool) blobfsm.Plan {
	p := fillPlan
	p.MaxRuns = s.opts.MaxConnections
	p.Writeback = writeback
	return p
}

// getChunkBuf returns a pooled buffer of n bytes.
func getChunkBuf(n int64) *[]byte { return chunkPool.get(n) }

// fetchRun fetches the run's chunks in one range request into df and lands
// them one by one, so that readers of the first chunk need not wait for
// the last. It runs detached from any reader: a reader that gives up does
// not cancel a fetch others may be waiting on. ctx ends with the
// generation or the store; a stall is ended by the idle timeout, which
// starts only when the request is sent: waiting for a connection is
// queueing, not a stall.
func (b *Blob) fetchRun(ctx context.Context, run blobfsm.Run, df *dataFile, f blobio.Fetcher) {
	defer df.release()
	s := b.store
	rr := byterange.Range{Start: run.C0 * s.opts.ChunkSize, End: min(run.End*s.opts.ChunkSize, b.desc.Size)}
	if run.Exact {
		rr = run.Bytes
	}
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
			cancel(fmt.Errorf("%w: no bytes for %s", errdefs.ErrFetchTimeout, timeout))
		})
		defer idle.Stop()

		s.stats.rangeRequests.Add(1)
		body, err := f.FetchRange(ctx, b.desc, rr.Start, rr.Len())
		var whole *blobio.WholeBlob
		if errors.As(err, &whole) {
			defer whole.Body.Close()
			in := &idleReader{r: whole.Body, idle: idle, timeout: timeout}
			if run.Exact {
				// Its bytes, once the source has sent what comes before.
				if _, err := io.CopyN(io.Discard, in, rr.Start); err != nil {
					return causeOr(ctx, err)
				}
				return b.landExact(ctx, run, df, in)
			}
			return b.landWhole(ctx, run, df, in)
		}
		if err != nil {
			return causeOr(ctx, err)
		}
		defer body.Close()
		in := &idleReader{r: body, idle: idle, timeout: timeout}
		if run.Exact {
			return b.landExact(ctx, run, df, in)
		}
		l := b.startLander(run, df)
		for c := run.C0; c < run.End; c++ {
			if run.Stream && !b.awaitClaim(ctx, run, c, in) {
				break // the stream ends here; its request is closed
			}
			b.awaitHasher(ctx, c, in)
			cr := byterange.Range{Start: c * s.opts.ChunkSize, End: min((c+1)*s.opts.ChunkSize, b.desc.Size)}
			bp, err := b.readChunk(in, cr)
			if err == nil {
				err = l.put(c, cr, bp)
			}
			if err != nil {
				l.finish()
				return causeOr(ctx, err)
			}
		}
		return l.finish()
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
		b.applyLocked(b.m.FetchFailed(run.Gen, run.ID, err, b.store.now()))
		b.mu.Unlock()
	} else if run.Stream {
		b.mu.Lock()
		b.applyLocked(b.m.StreamEnded(run.Gen, run.ID))
		b.mu.Unlock()
	}
}

// readChunk reads the next chunk of a run's body into a pooled buffer.
func (b *Blob) readChunk(in io.Reader, cr byterange.Range) (*[]byte, error) {
	bp := getChunkBuf(cr.Len())
	if _, err := io.ReadFull(in, *bp); err != nil {
		chunkPool.Put(bp)
		return nil, err
	}
	return bp, nil
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
// buf, are held for the hasher and for reads (heldbufs.go) when the
// hasher will soon need them; otherwise buf goes back to the pool.
func (b *Blob) land(run blobfsm.Run, c int64, cr byterange.Range, buf *[]byte) {
	b.mu.Lock()
	a := b.m.Landed(run.Gen, run.ID, c, b.store.now())
	if a.Wake {
		b.holdLocked(cr.Start, buf)
	} else {
		chunkPool.Put(buf)
	}
	// The machine asks for hashing when this chunk extends the present
	// prefix past the digest: hash here if the buffers are kept.
	// A stream lands chunks in order, one after another: hashing there
	// would hold up its reads of the socket, so its chunks go to the
	// background hasher, which keeps pace from the held buffers.
	inline := a.Hash && !run.Stream && b.holdsLocked(a.HashFrom)
	gen, h, from, to := b.m.Gen(), b.hasher, a.HashFrom, a.HashTo
	if inline {
		a.Hash = false
	}
	b.applyLocked(a)
	b.mu.Unlock()
	if inline {
		b.hashInline(gen, h, from, to)
	}
	if a.Save {
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

// wholeClaimAhead is how many chunks past the one arriving a whole-blob
// stream claims, so that readers just ahead of it wait for the stream
// instead of sending range requests of their own. It bounds what the
// claim costs, whatever size the descriptor says.
const wholeClaimAhead = 64

// landWhole lands what the source sent when it answered run's range
// request with the whole blob; in is that body from byte 0. Chunks the run
// owns, and chunks the blob lacks that no other run is fetching, are
// written and landed as they arrive; the rest are dropped. The stream is
// read while it still has chunks to land, so a pull-through mirror's first
// answer fills the cache rather than being asked for again range by range.
//
// Runs sent before the first whole answer came back get whole answers
// too. Such a run hands the stream already reading (the lead) the chunks
// ahead of it, and reads its own answer only as far as the chunks the
// lead has passed, claiming nothing more.
func (b *Blob) landWhole(ctx context.Context, run blobfsm.Run, df *dataFile, in io.Reader) error {
	b.mu.Lock()
	leading := b.lead.ID == 0 || b.m.RunLeft(b.lead.ID) == 0
	if leading {
		b.lead, b.leadAt = run, -1
	} else if b.m.HandOver(run.Gen, run.ID, b.lead.ID, b.leadAt) {
		b.mu.Unlock()
		return nil
	}
	b.mu.Unlock()
	if leading {
		defer func() {
			b.mu.Lock()
			if b.lead.ID == run.ID {
				b.lead = blobfsm.Run{}
			}
			b.mu.Unlock()
		}()
	}

	s := b.store
	cs := s.opts.ChunkSize
	last := (b.desc.Size - 1) / cs
	for c := int64(0); c <= last; c++ {
		b.mu.Lock()
		var mine bool
		if leading {
			b.leadAt = c
			mine = b.m.Claim(run.Gen, run.ID, c)
			for ahead := c + 1; ahead <= min(c+wholeClaimAhead, last); ahead++ {
				b.m.Claim(run.Gen, run.ID, ahead)
			}
		} else {
			mine = b.m.Owns(run.Gen, run.ID, c)
		}
		left := b.m.RunLeft(run.ID)
		b.mu.Unlock()
		if left == 0 {
			return nil // everything from here on is present or another run's
		}
		cr := byterange.Range{Start: c * cs, End: min((c+1)*cs, b.desc.Size)}
		bp, err := b.readChunk(in, cr)
		if err != nil {
			return causeOr(ctx, err)
		}
		if !mine {
			chunkPool.Put(bp)
			continue
		}
		if err := df.writeChunk(*bp, cr, run.Writeback); err != nil {
			chunkPool.Put(bp)
			return err
		}
		b.land(run, c, cr, bp)
	}
	b.mu.Lock()
	left := b.m.RunLeft(run.ID)
	b.mu.Unlock()
	if left > 0 {
		// Cannot happen while claims and hand-overs only take chunks
		// ahead of the stream; if it does, the chunks are freed for
		// another fetch rather than left waiting.
		return fmt.Errorf("whole-blob answer ended with %d of its chunks not landed", left)
	}
	return nil
}

// landExact reads exact run's bytes from in, which starts at the first of
// them, in pieces cut at chunk boundaries, and writes and lands the bytes
// of each piece that are the run's own (blobfsm.Run.Own); the others were
// bridged (blobfsm's exact.go) and are dropped. They are written through
// the page cache unless a piece happens to suit O_DIRECT (directio.go),
// and not held: the hasher reads them back from the page cache.
func (b *Blob) landExact(ctx context.Context, run blobfsm.Run, df *dataFile, in io.Reader) error {
	cs := b.store.opts.ChunkSize
	own := run.Own
	for off := run.Bytes.Start; off < run.Bytes.End; {
		piece := byterange.Range{Start: off, End: min(run.Bytes.End, off/cs*cs+cs)}
		bp, err := b.readChunk(in, piece)
		if err != nil {
			return causeOr(ctx, err)
		}
		for len(own) > 0 && own[0].Start < piece.End {
			o := byterange.Range{Start: max(own[0].Start, piece.Start), End: min(own[0].End, piece.End)}
			if err := df.writeChunk((*bp)[o.Start-off:o.End-off], o, run.Writeback); err != nil {
				chunkPool.Put(bp)
				return err
			}
			if own[0].End > piece.End {
				break
			}
			own = own[1:]
		}
		chunkPool.Put(bp)
		b.mu.Lock()
		a := b.m.LandedBytes(run.Gen, run.ID, piece, b.store.now())
		b.applyLocked(a)
		b.mu.Unlock()
		if a.Save {
			b.goBackground(b.trySaveState)
		}
		off = piece.End
	}
	return nil
}
