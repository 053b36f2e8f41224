package blobfsm

import (
	"errors"
	"fmt"
	"time"

	"github.com/imgfs/imgfs/internal/byterange"
	"github.com/imgfs/imgfs/internal/errdefs"
)

// Machine is the whole lifecycle of one partial blob as a plain value:
// which bytes are present, which chunks are being fetched, how far the
// digest has been computed, and what phase the blob is in. It does no I/O,
// starts no goroutines and reads no clock. Each event returns what must
// happen next as Actions, and the driver performs them and feeds the
// results back in as further events. It is not safe for concurrent use:
// the driver serialises access.
//
// Present bytes are always whole chunks, and a chunk is fetched only when
// it is neither present nor in flight, so a byte once written is never
// written again in the same generation: what was hashed is what is served.
type Machine struct {
	size      int64
	chunkSize int64

	phase Phase
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
	// (see Plan.Stream). An edge chunk is neither present nor in
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
	// a mismatch (see MismatchBackoff).
	failErr    error
	failUntil  time.Time
	mismatches int // in a row; reset by a match

	commitErr error // why the last commit failed

	savedAt time.Time // when the state was last saved
}

// Phase is where a blob is in its lifecycle.
type Phase uint8

// The phases, in the order a blob goes through them. A mismatch goes back
// to PhaseFetching in a new generation; a failed commit is retried from
// PhaseCommitFailed.
const (
	PhaseFetching     Phase = iota // some bytes are missing
	PhaseVerifying                 // all present; the digest is being finished
	PhaseCommitting                // the digest matched; the commit is running
	PhaseComplete                  // committed into blobs/
	PhaseCommitFailed              // verified, but the commit failed; retryable
)

// String names the phase, for logs and test failures.
func (p Phase) String() string {
	return [...]string{"fetching", "verifying", "committing", "complete", "commit-failed"}[p]
}

// Class says who asked for a run, so each kind can be bounded on its own.
type Class uint8

// The classes of runs.
const (
	ClassRead     Class = iota // a reader's chunks and readahead
	ClassBulk                  // fills and reads waiting for the verdict
	ClassPrefetch              // background prefetch
	numClasses
)

// Plan says how Want cuts missing chunks into runs.
type Plan struct {
	Class Class
	// RunChunks is the most chunks one range request covers: small enough
	// that several run in parallel, large enough that per-request latency
	// does not dominate.
	RunChunks int64
	// MaxRuns bounds the runs of this class in flight (0: no bound), so a
	// whole-blob fill costs memory and goroutines by connection, not by
	// the blob's claimed size.
	MaxRuns int
	// Writeback starts writing landed chunks to disk at once. It suits
	// callers that wait for the commit, whose fsync then has little left.
	Writeback bool
	// Stream makes each new run a stream: its request reaches to the end
	// of the missing stretch it starts, but it claims only RunChunks
	// chunks at first, and later wants that reach its next chunk claim
	// more for it instead of sending requests of their own. A sequential
	// reader then costs one request, paced by its readahead.
	Stream bool
}

type runState struct {
	class  Class
	c0, c1 int64 // chunks [c0, c1) claimed so far
	left   int   // chunks not yet landed
	// A stream run's request covers chunks [c0, end); it stays open, with
	// nothing left to land, until StreamEnded. Other runs have end == c1.
	end    int64
	stream bool
}

// Run is one range request to make: chunks [C0, End) of generation
// Gen, of which [C0, C1) are claimed; a stream run lands the rest only as
// it claims them. ID and Gen name the run in the events that report on
// it.
type Run struct {
	ID          uint64
	Gen         uint64
	C0, C1, End int64
	Writeback   bool // from the Plan
	Stream      bool // from the Plan
}

// Actions is what the driver must do after an event.
type Actions struct {
	Fetch []Run // range requests to start
	// Hash asks for the digest to be fed [HashFrom, HashTo); with
	// HashFinal the hasher then holds the whole blob and gives the verdict.
	Hash             bool
	HashFrom, HashTo int64
	HashFinal        bool
	Sync             bool // start flushing the fully present file early
	Commit           bool // the digest matched: commit the blob
	Replace          bool // a mismatch: swap in a fresh empty file for the new generation
	Save             bool // save the present ranges (after syncing the data)
	SetAside         bool // adopted over unverified bytes: tell whoever may hold copies of them
	Wake             bool // something waiters may care about changed
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

// MismatchBackoff returns how long a blob fails fast after its nth
// mismatch in a row: firstMismatchBackoff, doubling with each further
// mismatch, at most PermanentErrorWindow. A source that keeps lying is
// asked less and less often; one that recovers is asked again soon.
func MismatchBackoff(n int) time.Duration {
	return min(firstMismatchBackoff<<min(n-1, 8), PermanentErrorWindow)
}

// New starts the machine for a blob of size bytes, resuming
// from present and a digest computed over [0, hashedTo) when those are
// consistent. Present ranges are cut down to whole chunks.
func New(size, chunkSize int64, present []byterange.Range, hashedTo int64, now time.Time) (*Machine, Actions) {
	m := &Machine{
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
	var a Actions
	m.advance(&a)
	return m, a
}

func (m *Machine) chunkRange(c int64) byterange.Range {
	return byterange.Range{Start: c * m.chunkSize, End: min((c+1)*m.chunkSize, m.size)}
}

// Verified reports whether the present bytes are known to match the
// digest, which is when readers waiting for the verdict may go on.
func (m *Machine) Verified() bool {
	return m.phase == PhaseCommitting || m.phase == PhaseComplete || m.phase == PhaseCommitFailed
}

// FailFast returns the error that reads and fills needing more than what
// is present get at once, if the blob is in a failure window.
func (m *Machine) FailFast(now time.Time) error {
	if m.failErr != nil && now.Before(m.failUntil) {
		return m.failErr
	}
	return nil
}

// Want asks for r to become present. It returns the runs to start for
// missing chunks that no run is fetching yet, at most plan.RunChunks
// chunks each and, with plan.MaxRuns, no more runs of the class in flight
// than that. Without a source (offline) it fails instead of fetching.
func (m *Machine) Want(r byterange.Range, plan Plan, offline bool, now time.Time) (Actions, error) {
	var a Actions
	m.advance(&a) // restarts hashing that stopped
	if m.phase != PhaseFetching {
		return a, nil
	}
	r = byterange.Range{Start: max(r.Start, 0), End: min(r.End, m.size)}
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
		c0 := c
		for c*m.chunkSize < gap.End && c-c0 < plan.RunChunks {
			if _, busy := m.flights[c]; busy {
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
	cr := m.chunkRange(c)
	m.present.Add(cr)
	m.presentBytes += cr.Len()
	m.fetched.Add(cr)
	m.progress++
	if now.Sub(m.savedAt) >= saveEvery {
		a.Save = true
		m.savedAt = now
	}
	a.Wake = true
	m.advance(&a)
	return a
}

// Claim reports whether run id is to land chunk c, which its source sent
// although the run did not ask for it (a whole-blob answer). A chunk the
// run already owns is its own; one the blob lacks and no other run is
// fetching, the run takes on, so no other run fetches it meanwhile. Chunks
// present or owned by another run are not the run's: their bytes are
// dropped, never written over what may have been served.
func (m *Machine) Claim(gen, id uint64, c int64) bool {
	run, ok := m.runs[id]
	if gen != m.gen || !ok || c < 0 || c*m.chunkSize >= m.size {
		return false
	}
	if owner, inFlight := m.flights[c]; inFlight {
		return owner == id
	}
	if m.phase != PhaseFetching || m.present.Contains(m.chunkRange(c)) {
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

// RunLeft returns how many chunks run id has yet to land: 0 once it is
// done, failed, or of an older generation.
func (m *Machine) RunLeft(id uint64) int {
	if run, ok := m.runs[id]; ok {
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

// Hashed records that the digest now covers [0, to). The returned hash
// action, if any, is the hasher's next step.
func (m *Machine) Hashed(gen uint64, to int64) Actions {
	var a Actions
	if gen != m.gen || !m.hashing {
		return a
	}
	m.hashing = false
	if to > m.hashedTo && to <= m.present.PrefixEnd() {
		m.hashedTo = to
		m.progress++
		a.Wake = true
	}
	m.advance(&a)
	return a
}

// HashStopped records that the hasher gave up with err (a read error, or
// the store is closing). Waiters learn of it like a failed fetch; the next
// want starts hashing again.
func (m *Machine) HashStopped(gen uint64, err error) Actions {
	if gen != m.gen || !m.hashing {
		return Actions{}
	}
	m.hashing = false
	m.failures++
	m.lastErr = err
	return Actions{Wake: true}
}

// Matched records a matching digest: commit.
func (m *Machine) Matched(gen uint64) Actions {
	if gen != m.gen || m.phase != PhaseVerifying {
		return Actions{}
	}
	m.phase = PhaseCommitting
	m.mismatches = 0
	return Actions{Commit: true, Wake: true}
}

// Mismatched records that the whole blob hashed to another digest. Every
// byte is dropped and a new generation starts, in a fresh file; waiters on
// the old one fail, and reads and fills fail fast for MismatchBackoff, so
// a lying source cannot make the work grow.
func (m *Machine) Mismatched(gen uint64, now time.Time) Actions {
	if gen != m.gen || m.phase != PhaseVerifying {
		return Actions{}
	}
	return m.dropGeneration(now)
}

// Rejected records that bytes read from generation gen failed a digest a
// layer format records for them (an eStargz chunk, an indexed gzip span),
// which proves the fetched bytes bad before the whole blob is hashed. They
// are dropped as after a mismatch, with its backoff. A verified blob
// ignores it: its bytes are the manifest's, so the fault is not theirs.
func (m *Machine) Rejected(gen uint64, now time.Time) Actions {
	if gen != m.gen || m.Verified() {
		return Actions{}
	}
	return m.dropGeneration(now)
}

// dropGeneration drops every byte and starts a new generation that fails
// fast for MismatchBackoff.
func (m *Machine) dropGeneration(now time.Time) Actions {
	m.gen++
	m.epoch++
	m.phase = PhaseFetching
	m.present, m.presentBytes, m.fetched = byterange.Set{}, 0, byterange.Set{}
	m.flights = make(map[int64]uint64)
	m.runs = make(map[uint64]*runState)
	m.edges = make(map[int64]uint64)
	m.inClass = [numClasses]int{}
	m.hashedTo, m.hashing, m.synced = 0, false, false
	m.mismatches++
	m.lastErr = errdefs.ErrDigestMismatch
	backoff := MismatchBackoff(m.mismatches)
	m.failErr = fmt.Errorf("%w (%d in a row); fetching afresh after %s", errdefs.ErrDigestMismatch, m.mismatches, backoff)
	m.failUntil = now.Add(backoff)
	return Actions{Replace: true, Wake: true}
}

// Committed records that the blob is in blobs/.
func (m *Machine) Committed() Actions {
	m.phase = PhaseComplete
	m.commitErr = nil
	return Actions{Wake: true}
}

// CommitFailed records that the commit failed. The bytes stay verified and
// readable; the state is saved so that the next open verifies and commits,
// and RetryCommit tries again in this one.
func (m *Machine) CommitFailed(err error) Actions {
	if m.phase != PhaseCommitting {
		return Actions{}
	}
	m.phase = PhaseCommitFailed
	m.commitErr = err
	return Actions{Save: true, Wake: true}
}

// RetryCommit commits again after a failure.
func (m *Machine) RetryCommit() Actions {
	if m.phase != PhaseCommitFailed {
		return Actions{}
	}
	m.phase = PhaseCommitting
	return Actions{Commit: true}
}

// Adopted records that the complete blob appeared in blobs/, committed by
// someone else: nothing is left to do. The commit vouches for its own
// bytes only: if this blob held bytes it had not verified, which readers
// may have been served, a new epoch starts, so that those readers do not
// end cleanly on the commit's verdict.
func (m *Machine) Adopted() Actions {
	if m.phase == PhaseComplete {
		return Actions{}
	}
	a := Actions{Wake: true}
	if !m.Verified() && m.presentBytes > 0 {
		m.epoch++
		a.SetAside = true
	}
	m.phase = PhaseComplete
	return a
}

// Saved records that the state was saved (on close, or after a commit
// failure) so the periodic saves count from here.
func (m *Machine) Saved(now time.Time) {
	m.savedAt = now
}

// advance moves a blob whose bytes are all present to verifying, and asks
// for hashing whenever the present prefix has grown past the digest, or
// for the verdict once the digest covers the whole blob.
func (m *Machine) advance(a *Actions) {
	if m.phase != PhaseFetching && m.phase != PhaseVerifying {
		return
	}
	if m.presentBytes == m.size {
		m.phase = PhaseVerifying
		if !m.synced {
			m.synced = true
			a.Sync = m.size > 0
		}
	}
	if m.hashing {
		return
	}
	prefix := m.present.PrefixEnd()
	if prefix > m.hashedTo || m.phase == PhaseVerifying {
		m.hashing = true
		a.Hash, a.HashFrom, a.HashTo = true, m.hashedTo, prefix
		a.HashFinal = prefix == m.size
	}
}
