package cache

import (
	"errors"
	"fmt"
	"time"

	"github.com/imgfs/imgfs/internal/byterange"
	"github.com/imgfs/imgfs/internal/errdefs"
)

// blobMachine is the whole lifecycle of one partial blob as a plain value:
// which bytes are present, which chunks are being fetched, how far the
// digest has been computed, and what phase the blob is in. It does no I/O,
// starts no goroutines and reads no clock. Each event returns what must
// happen next as blobActions, and the Blob performs them and feeds the
// results back in as further events. Callers serialise access (Blob.mu).
//
// Present bytes are always whole chunks, and a chunk is fetched only when
// it is neither present nor in flight, so a byte once written is never
// written again in the same generation: what was hashed is what is served.
type blobMachine struct {
	size      int64
	chunkSize int64

	phase blobPhase
	// gen counts the blob's generations. A mismatch drops every byte and
	// starts a new one; events from an older generation are ignored.
	gen uint64
	// epoch counts the times bytes that readers may have been served
	// unverified were dropped (a mismatch, a rejection) or set aside (a
	// commit by another process adopted over them). A reader served
	// unverified bytes in one epoch must not end cleanly in another.
	epoch uint64

	present      byterange.Set
	presentBytes int64         // present.Size(), kept so that no event walks the set
	fetched      byterange.Set // landed in this generation, named in mismatch logs

	flights map[int64]uint64 // chunk index → the run fetching it
	runs    map[uint64]*runState
	// edges maps the chunk each open stream run claims next to that run
	// (see fetchPlan.stream). An edge chunk is neither present nor in
	// flight.
	edges   map[int64]uint64
	nextRun uint64
	inClass [numClasses]int // runs in flight per class

	hashedTo int64 // the digest covers [0, hashedTo)
	hashing  bool  // a hash action is outstanding
	synced   bool  // the early fsync of the fully present blob was asked for

	progress uint64 // counts landings and hashing steps, for waiters' idle timers
	failures uint64 // counts failed runs, so waiters notice one
	lastErr  error  // the latest failure

	// failErr is returned to every read or fill that would have to wait
	// until failUntil: after an error the source calls permanent, or after
	// a mismatch (see mismatchBackoff).
	failErr    error
	failUntil  time.Time
	mismatches int // in a row; reset by a match

	commitErr error // why the last commit failed

	savedAt time.Time // when the state was last saved
}

type blobPhase uint8

const (
	phaseFetching     blobPhase = iota // some bytes are missing
	phaseVerifying                     // all present; the digest is being finished
	phaseCommitting                    // the digest matched; the commit is running
	phaseComplete                      // committed into blobs/
	phaseCommitFailed                  // verified, but the commit failed; retryable
)

func (p blobPhase) String() string {
	return [...]string{"fetching", "verifying", "committing", "complete", "commit-failed"}[p]
}

// runClass says who asked for a run, so each kind can be bounded on its own.
type runClass uint8

const (
	classRead     runClass = iota // a reader's chunks and readahead
	classBulk                     // fills and reads waiting for the verdict
	classPrefetch                 // background prefetch
	numClasses
)

// fetchPlan says how want cuts missing chunks into runs.
type fetchPlan struct {
	class runClass
	// runChunks is the most chunks one range request covers: small enough
	// that several run in parallel, large enough that per-request latency
	// does not dominate.
	runChunks int64
	// maxRuns bounds the runs of this class in flight (0: no bound), so a
	// whole-blob fill costs memory and goroutines by connection, not by
	// the blob's claimed size.
	maxRuns int
	// writeback starts writing landed chunks to disk at once. It suits
	// callers that wait for the commit, whose fsync then has little left.
	writeback bool
	// stream makes each new run a stream: its request reaches to the end
	// of the missing stretch it starts, but it claims only runChunks
	// chunks at first, and later wants that reach its next chunk claim
	// more for it instead of sending requests of their own. A sequential
	// reader then costs one request, paced by its readahead.
	stream bool
}

type runState struct {
	class  runClass
	c0, c1 int64 // chunks [c0, c1) claimed so far
	left   int   // chunks not yet landed
	// A stream run's request covers chunks [c0, end); it stays open, with
	// nothing left to land, until streamEnded. Other runs have end == c1.
	end    int64
	stream bool
}

// fetchRun is one range request to make: chunks [c0, end) of generation
// gen, of which [c0, c1) are claimed; a stream run lands the rest only as
// it claims them.
type fetchRun struct {
	id          uint64
	gen         uint64
	c0, c1, end int64
	writeback   bool
	stream      bool
}

// blobActions is what the Blob must do after an event.
type blobActions struct {
	fetch []fetchRun
	// hash asks for the digest to be fed [hashFrom, hashTo); with
	// hashFinal the hasher then holds the whole blob and gives the verdict.
	hash             bool
	hashFrom, hashTo int64
	hashFinal        bool
	sync             bool // start flushing the fully present file early
	commit           bool // the digest matched: commit the blob
	replace          bool // a mismatch: swap in a fresh empty file for the new generation
	save             bool // save the present ranges (after syncing the data)
	setAside         bool // adopted over unverified bytes: tell whoever may hold copies of them
	wake             bool // something waiters may care about changed
}

// Tunables of the machine.
const (
	// PermanentErrorWindow is how long reads and fills of a blob fail at
	// once after a permanent fetch error, and the longest they do after
	// mismatches in a row.
	PermanentErrorWindow = 30 * time.Second

	// firstMismatchBackoff is how long reads and fills of a blob fail at
	// once after its first mismatch. It outlasts the kernel's readahead
	// READs that were already queued behind the read that failed, so one
	// reader of a corrupt blob costs one fetch of it, not one per READ.
	firstMismatchBackoff = time.Second

	// The state is saved when a chunk lands this long after the last
	// save, so a kill -9 loses at most about this much fetching. Time, not
	// bytes: each save first fdatasyncs the data it claims, and on a fast
	// link a byte quota would push the whole blob to disk while a cold
	// reader is still streaming it, taking CPU and disk from the read.
	saveEvery = time.Second
)

// mismatchBackoff returns how long a blob fails fast after its nth
// mismatch in a row: firstMismatchBackoff, doubling with each further
// mismatch, at most PermanentErrorWindow. A source that keeps lying is
// asked less and less often; one that recovers is asked again soon.
func mismatchBackoff(n int) time.Duration {
	return min(firstMismatchBackoff<<min(n-1, 8), PermanentErrorWindow)
}

// newBlobMachine starts the machine for a blob of size bytes, resuming
// from present and a digest computed over [0, hashedTo) when those are
// consistent. Present ranges are cut down to whole chunks.
func newBlobMachine(size, chunkSize int64, present []byterange.Range, hashedTo int64, now time.Time) (*blobMachine, blobActions) {
	m := &blobMachine{
		size:      size,
		chunkSize: chunkSize,
		flights:   make(map[int64]uint64),
		runs:      make(map[uint64]*runState),
		edges:     make(map[int64]uint64),
		// savedAt is left zero, so the first chunk to land is saved at
		// once: a process killed early still leaves something to resume.
	}
	for _, r := range present {
		start := (r.Start + chunkSize - 1) / chunkSize * chunkSize
		end := r.End / chunkSize * chunkSize
		if r.End == size {
			end = size
		}
		if 0 <= start && start < end && end <= size {
			m.present.Add(byterange.Range{Start: start, End: end})
		}
	}
	m.presentBytes = m.present.Size()
	if 0 <= hashedTo && hashedTo <= m.present.PrefixEnd() {
		m.hashedTo = hashedTo
	}
	var a blobActions
	m.advance(&a)
	return m, a
}

func (m *blobMachine) chunkRange(c int64) byterange.Range {
	return byterange.Range{Start: c * m.chunkSize, End: min((c+1)*m.chunkSize, m.size)}
}

// verified reports whether the present bytes are known to match the
// digest, which is when readers waiting for the verdict may go on.
func (m *blobMachine) verified() bool {
	return m.phase == phaseCommitting || m.phase == phaseComplete || m.phase == phaseCommitFailed
}

// failFast returns the error that reads and fills needing more than what
// is present get at once, if the blob is in a failure window.
func (m *blobMachine) failFast(now time.Time) error {
	if m.failErr != nil && now.Before(m.failUntil) {
		return m.failErr
	}
	return nil
}

// want asks for r to become present. It returns the runs to start for
// missing chunks that no run is fetching yet, at most plan.runChunks
// chunks each and, with plan.maxRuns, no more runs of the class in flight
// than that. Without a source (offline) it fails instead of fetching.
func (m *blobMachine) want(r byterange.Range, plan fetchPlan, offline bool, now time.Time) (blobActions, error) {
	var a blobActions
	m.advance(&a) // restarts hashing that stopped
	if m.phase != phaseFetching {
		return a, nil
	}
	r = byterange.Range{Start: max(r.Start, 0), End: min(r.End, m.size)}
	for off := r.Start; off < r.End; {
		if plan.maxRuns > 0 && m.inClass[plan.class] >= plan.maxRuns {
			break
		}
		gap := m.present.FirstGap(byterange.Range{Start: off, End: r.End})
		if gap.Len() <= 0 {
			break
		}
		if err := m.failFast(now); err != nil {
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
			c = m.extendStream(id, c, gap.End, plan.runChunks)
			a.wake = true // the stream waits for its claims
			off = m.chunkRange(c - 1).End
			continue
		}
		c0 := c
		for c*m.chunkSize < gap.End && c-c0 < plan.runChunks {
			if _, busy := m.flights[c]; busy {
				break
			}
			c++
		}
		m.nextRun++
		run := fetchRun{id: m.nextRun, gen: m.gen, c0: c0, c1: c, end: c, writeback: plan.writeback, stream: plan.stream}
		if plan.stream {
			run.end = m.stretchEnd(c)
			if c < run.end {
				m.edges[c] = run.id
			}
		}
		m.runs[run.id] = &runState{class: plan.class, c0: c0, c1: c, left: int(c - c0), end: run.end, stream: plan.stream}
		m.inClass[plan.class]++
		for k := c0; k < c; k++ {
			m.flights[k] = run.id
		}
		a.fetch = append(a.fetch, run)
		off = m.chunkRange(c - 1).End
	}
	return a, nil
}

// landed records that chunk c of run id was written to the file.
func (m *blobMachine) landed(gen, id uint64, c int64, now time.Time) blobActions {
	var a blobActions
	if gen != m.gen || m.flights[c] != id {
		return a
	}
	delete(m.flights, c)
	m.finishRunChunk(id)
	cr := m.chunkRange(c)
	m.present.Add(cr)
	m.presentBytes += cr.Len()
	m.fetched.Add(cr)
	m.progress++
	if now.Sub(m.savedAt) >= saveEvery {
		a.save = true
		m.savedAt = now
	}
	a.wake = true
	m.advance(&a)
	return a
}

// claim reports whether run id is to land chunk c, which its source sent
// although the run did not ask for it (a whole-blob answer). A chunk the
// run already owns is its own; one the blob lacks and no other run is
// fetching, the run takes on, so no other run fetches it meanwhile. Chunks
// present or owned by another run are not the run's: their bytes are
// dropped, never written over what may have been served.
func (m *blobMachine) claim(gen, id uint64, c int64) bool {
	run, ok := m.runs[id]
	if gen != m.gen || !ok || c < 0 || c*m.chunkSize >= m.size {
		return false
	}
	if owner, inFlight := m.flights[c]; inFlight {
		return owner == id
	}
	if m.phase != phaseFetching || m.present.Contains(m.chunkRange(c)) {
		return false
	}
	delete(m.edges, c) // a stream waiting for c ends there
	m.flights[c] = id
	run.left++
	run.c0, run.c1 = min(run.c0, c), max(run.c1, c+1)
	return true
}

// handOver gives run to the chunks run from is fetching that lie after
// chunk after, and reports whether run from has none left, in which case
// it ends without being a failure. A later whole-blob answer uses it to
// leave the chunks ahead to the stream already reading towards them, and
// lands only those the stream has passed.
func (m *blobMachine) handOver(gen, from, to uint64, after int64) bool {
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

// owns reports whether run id of generation gen is fetching chunk c.
func (m *blobMachine) owns(gen, id uint64, c int64) bool {
	return gen == m.gen && m.flights[c] == id
}

// runLeft returns how many chunks run id has yet to land: 0 once it is
// done, failed, or of an older generation.
func (m *blobMachine) runLeft(id uint64) int {
	if run, ok := m.runs[id]; ok {
		return run.left
	}
	return 0
}

func (m *blobMachine) finishRunChunk(id uint64) {
	run := m.runs[id]
	run.left--
	if run.left == 0 && !run.stream {
		delete(m.runs, id)
		m.inClass[run.class]--
	}
}

// fetchFailed records that run id stopped with err; its chunks that did
// not land are free to be fetched again. An error wrapping errdefs.ErrPermanent
// opens a failure window.
func (m *blobMachine) fetchFailed(gen, id uint64, err error, now time.Time) blobActions {
	if gen != m.gen || !m.dropRun(id) {
		return blobActions{}
	}
	m.failures++
	m.lastErr = err
	if errors.Is(err, errdefs.ErrPermanent) {
		m.failErr, m.failUntil = err, now.Add(PermanentErrorWindow)
	}
	return blobActions{wake: true}
}

// hashed records that the digest now covers [0, to). The returned hash
// action, if any, is the hasher's next step.
func (m *blobMachine) hashed(gen uint64, to int64) blobActions {
	var a blobActions
	if gen != m.gen || !m.hashing {
		return a
	}
	m.hashing = false
	if to > m.hashedTo && to <= m.present.PrefixEnd() {
		m.hashedTo = to
		m.progress++
		a.wake = true
	}
	m.advance(&a)
	return a
}

// hashStopped records that the hasher gave up with err (a read error, or
// the store is closing). Waiters learn of it like a failed fetch; the next
// want starts hashing again.
func (m *blobMachine) hashStopped(gen uint64, err error) blobActions {
	if gen != m.gen || !m.hashing {
		return blobActions{}
	}
	m.hashing = false
	m.failures++
	m.lastErr = err
	return blobActions{wake: true}
}

// matched records a matching digest: commit.
func (m *blobMachine) matched(gen uint64) blobActions {
	if gen != m.gen || m.phase != phaseVerifying {
		return blobActions{}
	}
	m.phase = phaseCommitting
	m.mismatches = 0
	return blobActions{commit: true, wake: true}
}

// mismatched records that the whole blob hashed to another digest. Every
// byte is dropped and a new generation starts, in a fresh file; waiters on
// the old one fail, and reads and fills fail fast for mismatchBackoff, so
// a lying source cannot make the work grow.
func (m *blobMachine) mismatched(gen uint64, now time.Time) blobActions {
	if gen != m.gen || m.phase != phaseVerifying {
		return blobActions{}
	}
	return m.dropGeneration(now)
}

// rejected records that bytes read from generation gen failed a digest a
// layer format records for them (an eStargz chunk, an indexed gzip span),
// which proves the fetched bytes bad before the whole blob is hashed. They
// are dropped as after a mismatch, with its backoff. A verified blob
// ignores it: its bytes are the manifest's, so the fault is not theirs.
func (m *blobMachine) rejected(gen uint64, now time.Time) blobActions {
	if gen != m.gen || m.verified() {
		return blobActions{}
	}
	return m.dropGeneration(now)
}

// dropGeneration drops every byte and starts a new generation that fails
// fast for mismatchBackoff.
func (m *blobMachine) dropGeneration(now time.Time) blobActions {
	m.gen++
	m.epoch++
	m.phase = phaseFetching
	m.present, m.presentBytes, m.fetched = byterange.Set{}, 0, byterange.Set{}
	m.flights = make(map[int64]uint64)
	m.runs = make(map[uint64]*runState)
	m.edges = make(map[int64]uint64)
	m.inClass = [numClasses]int{}
	m.hashedTo, m.hashing, m.synced = 0, false, false
	m.mismatches++
	m.lastErr = errdefs.ErrDigestMismatch
	backoff := mismatchBackoff(m.mismatches)
	m.failErr = fmt.Errorf("%w (%d in a row); fetching afresh after %s", errdefs.ErrDigestMismatch, m.mismatches, backoff)
	m.failUntil = now.Add(backoff)
	return blobActions{replace: true, wake: true}
}

// committed records that the blob is in blobs/.
func (m *blobMachine) committed() blobActions {
	m.phase = phaseComplete
	m.commitErr = nil
	return blobActions{wake: true}
}

// commitFailed records that the commit failed. The bytes stay verified and
// readable; the state is saved so that the next open verifies and commits,
// and retryCommit tries again in this one.
func (m *blobMachine) commitFailed(err error) blobActions {
	if m.phase != phaseCommitting {
		return blobActions{}
	}
	m.phase = phaseCommitFailed
	m.commitErr = err
	return blobActions{save: true, wake: true}
}

// retryCommit commits again after a failure.
func (m *blobMachine) retryCommit() blobActions {
	if m.phase != phaseCommitFailed {
		return blobActions{}
	}
	m.phase = phaseCommitting
	return blobActions{commit: true}
}

// adopted records that the complete blob appeared in blobs/, committed by
// someone else: nothing is left to do. The commit vouches for its own
// bytes only: if this blob held bytes it had not verified, which readers
// may have been served, a new epoch starts, so that those readers do not
// end cleanly on the commit's verdict.
func (m *blobMachine) adopted() blobActions {
	if m.phase == phaseComplete {
		return blobActions{}
	}
	a := blobActions{wake: true}
	if !m.verified() && m.presentBytes > 0 {
		m.epoch++
		a.setAside = true
	}
	m.phase = phaseComplete
	return a
}

// saved records that the state was saved (on close, or after a commit
// failure) so the periodic saves count from here.
func (m *blobMachine) saved(now time.Time) {
	m.savedAt = now
}

// advance moves a blob whose bytes are all present to verifying, and asks
// for hashing whenever the present prefix has grown past the digest, or
// for the verdict once the digest covers the whole blob.
func (m *blobMachine) advance(a *blobActions) {
	if m.phase != phaseFetching && m.phase != phaseVerifying {
		return
	}
	if m.presentBytes == m.size {
		m.phase = phaseVerifying
		if !m.synced {
			m.synced = true
			a.sync = m.size > 0
		}
	}
	if m.hashing {
		return
	}
	prefix := m.present.PrefixEnd()
	if prefix > m.hashedTo || m.phase == phaseVerifying {
		m.hashing = true
		a.hash, a.hashFrom, a.hashTo = true, m.hashedTo, prefix
		a.hashFinal = prefix == m.size
	}
}
