package blobfsm

import (
	"fmt"
	"time"

	"github.com/imgfs/imgfs/internal/byterange"
	"github.com/imgfs/imgfs/internal/errdefs"
)

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
	m.exactFlight = byterange.Set{}
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
