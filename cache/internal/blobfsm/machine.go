package blobfsm

import (
	"time"

	"github.com/imgfs/imgfs/internal/byterange"
)

// Machine is the whole lifecycle of one partial blob as a plain value:
// which bytes are present, which chunks are being fetched, how far the
// digest has been computed, and what phase the blob is in. It does no I/O,
// starts no goroutines and reads no clock. Each event returns what must
// happen next as Actions, and the driver performs them and feeds the
// results back in as further events. It is not safe for concurrent use:
// the driver serialises access.
//
// Present bytes are kept at byte granularity. A byte is fetched only when
// it is neither present nor in flight, so a byte once written is never
// written again in the same generation: what was hashed is what is served.
// Chunk runs land whole chunks, and only into chunks none of whose bytes
// is present or in an exact run's flight; exact runs (exact.go) land any
// bytes, and take the missing bytes of every other chunk.
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

	flights map[int64]uint64 // chunk index → the chunk run fetching it
	// exactFlight is the bytes exact runs are fetching (exact.go). It
	// never overlaps a chunk in flights.
	exactFlight byterange.Set
	runs        map[uint64]*runState
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

// New starts the machine for a blob of size bytes, resuming
// from present and a digest computed over [0, hashedTo) when those are
// consistent. Present ranges are taken as they are, at byte granularity:
// the state saved them only after their bytes reached the disk.
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
		if 0 <= r.Start && r.Start < r.End && r.End <= size {
			m.present.Add(r)
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
