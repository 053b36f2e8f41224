package blobfsm

import (
	"errors"
	"fmt"
	"time"

	"github.com/imgfs/imgfs/internal/byterange"
	"github.com/imgfs/imgfs/internal/errdefs"
)

// Want asks for r to become present. It returns the runs to start for
// missing chunks that no run is fetching yet, at most plan.RunChunks
// chunks each and, with plan.MaxRuns, no more runs of the class in flight
// than that. A chunk some of whose bytes are present or in an exact
// run's flight is fetched by exact runs, of its missing bytes only. With
// ClassExact, the missing bytes of r are fetched, not whole chunks
// (exact.go). Without a source (offline) it fails instead of fetching.
func (m *Machine) Want(r byterange.Range, plan Plan, offline bool, now time.Time) (Actions, error) {
	var a Actions
	m.advance(&a) // restarts hashing that stopped
	if m.phase != PhaseFetching {
		return a, nil
	}
	r = byterange.Range{Start: max(r.Start, 0), End: min(r.End, m.size)}
	if plan.Class == ClassExact {
		return a, m.wantExact(r, plan, offline, now, &a)
	}
	for off := r.Start; off < r.End; {
		if plan.MaxRuns > 0 && m.inClass[plan.Class] >= plan.MaxRuns {
			break
		}
		gap := m.present.FirstGap(byterange.Range{Start: off, End: r.End})
		if gap.Len() <= 0 {
			break
		}
		if err := m.FailFast(now); err != nil {
			return a, err
		}
		if offline {
			return a, fmt.Errorf("%w: bytes %d-%d", errdefs.ErrOffline, gap.Start, gap.End-1)
		}
		c := gap.Start / m.chunkSize
		if _, busy := m.flights[c]; busy {
			off = m.chunkRange(c).End
			continue
		}
		if id, ok := m.edges[c]; ok {
			c = m.extendStream(id, c, gap.End, plan.RunChunks)
			a.Wake = true // the stream waits for its claims
			off = m.chunkRange(c - 1).End
			continue
		}
		if !m.wholeMissing(c) {
			// Split: some of its bytes are present or coming. Its
			// missing bytes are fetched as they are.
			cr := m.chunkRange(c)
			m.startExact(m.needed(cr), plan, &a)
			off = cr.End
			continue
		}
		c0 := c
		for c*m.chunkSize < gap.End && c-c0 < plan.RunChunks {
			if _, busy := m.flights[c]; busy || !m.wholeMissing(c) {
				break
			}
			c++
		}
		m.nextRun++
		run := Run{ID: m.nextRun, Gen: m.gen, C0: c0, C1: c, End: c, Writeback: plan.Writeback, Stream: plan.Stream}
		if plan.Stream {
			run.End = m.stretchEnd(c)
			if c < run.End {
				m.edges[c] = run.ID
			}
		}
		m.runs[run.ID] = &runState{class: plan.Class, c0: c0, c1: c, left: int(c - c0), end: run.End, stream: plan.Stream}
		m.inClass[plan.Class]++
		for k := c0; k < c; k++ {
			m.flights[k] = run.ID
		}
		a.Fetch = append(a.Fetch, run)
		off = m.chunkRange(c - 1).End
	}
	return a, nil
}

// Landed records that chunk c of run id was written to the file.
func (m *Machine) Landed(gen, id uint64, c int64, now time.Time) Actions {
	var a Actions
	if gen != m.gen || m.flights[c] != id {
		return a
	}
	delete(m.flights, c)
	m.finishRunChunk(id)
	m.arrived(now, &a, m.chunkRange(c))
	return a
}

// arrived records that the bytes of rs were written to the file, for
// either kind of run: they are present, readers waiting for them are
// woken, the hasher may advance over them, and the state is saved now and
// then.
func (m *Machine) arrived(now time.Time, a *Actions, rs ...byterange.Range) {
	for _, r := range rs {
		m.present.Add(r)
		m.presentBytes += r.Len()
		m.fetched.Add(r)
	}
	m.progress++
	if now.Sub(m.savedAt) >= saveEvery {
		a.Save = true
		m.savedAt = now
	}
	a.Wake = true
	m.advance(a)
}

// Claim reports whether run id is to land chunk c, which its source sent
// although the run did not ask for it (a whole-blob answer). A chunk the
// run already owns is its own; one the blob lacks wholly and no other run
// is fetching, the run takes on, so no other run fetches it meanwhile.
// Chunks with any byte present or owned by another run are not the run's:
// their bytes are dropped, never written over what may have been served.
func (m *Machine) Claim(gen, id uint64, c int64) bool {
	run, ok := m.runs[id]
	if gen != m.gen || !ok || c < 0 || c*m.chunkSize >= m.size {
		return false
	}
	if owner, inFlight := m.flights[c]; inFlight {
		return owner == id
	}
	if m.phase != PhaseFetching || !m.wholeMissing(c) {
		return false
	}
	delete(m.edges, c) // a stream waiting for c ends there
	m.flights[c] = id
	run.left++
	run.c0, run.c1 = min(run.c0, c), max(run.c1, c+1)
	return true
}

// HandOver gives run to the chunks run from is fetching that lie after
// chunk after, and reports whether run from has none left, in which case
// it ends without being a failure. A later whole-blob answer uses it to
// leave the chunks ahead to the stream already reading towards them, and
// lands only those the stream has passed.
func (m *Machine) HandOver(gen, from, to uint64, after int64) bool {
	src, ok1 := m.runs[from]
	dst, ok2 := m.runs[to]
	if gen != m.gen || !ok1 || !ok2 || from == to {
		return false
	}
	for c := src.c0; c < src.c1; c++ {
		if m.flights[c] == from && c > after {
			m.flights[c] = to
			src.left--
			dst.left++
			dst.c0, dst.c1 = min(dst.c0, c), max(dst.c1, c+1)
		}
	}
	if src.left > 0 {
		return false
	}
	return m.dropRun(from)
}

// Owns reports whether run id of generation gen is fetching chunk c.
func (m *Machine) Owns(gen, id uint64, c int64) bool {
	return gen == m.gen && m.flights[c] == id
}

// RunLeft returns how many chunks run id has yet to land (for an exact
// run, how many pieces): 0 once it is done, failed, or of an older
// generation.
func (m *Machine) RunLeft(id uint64) int {
	if run, ok := m.runs[id]; ok {
		if run.exact {
			return len(run.pending.Ranges())
		}
		return run.left
	}
	return 0
}

func (m *Machine) finishRunChunk(id uint64) {
	run := m.runs[id]
	run.left--
	if run.left == 0 && !run.stream {
		delete(m.runs, id)
		m.inClass[run.class]--
	}
}

// FetchFailed records that run id stopped with err; its chunks that did
// not land are free to be fetched again. An error wrapping errdefs.ErrPermanent
// opens a failure window.
func (m *Machine) FetchFailed(gen, id uint64, err error, now time.Time) Actions {
	if gen != m.gen || !m.dropRun(id) {
		return Actions{}
	}
	m.failures++
	m.lastErr = err
	if errors.Is(err, errdefs.ErrPermanent) {
		m.failErr, m.failUntil = err, now.Add(PermanentErrorWindow)
	}
	return Actions{Wake: true}
}

// The state is saved when a chunk lands this long after the last
// save, so a kill -9 loses at most about this much fetching. Time, not
// bytes: each save first fdatasyncs the data it claims, and on a fast
// link a byte quota would push the whole blob to disk while a cold
// reader is still streaming it, taking CPU and disk from the read.
const saveEvery = time.Second

// Saved records that the state was saved (on close, or after a commit
// failure) so the periodic saves count from here.
func (m *Machine) Saved(now time.Time) {
	m.savedAt = now
}
