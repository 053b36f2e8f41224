package blobfsm

import (
	"fmt"
	"time"

	"github.com/imgfs/imgfs/internal/byterange"
	"github.com/imgfs/imgfs/internal/errdefs"
)

// Exact runs fetch bytes, not chunks. A read through a layer index (an
// eStargz TOC or chunk, a gzip span) knows the compressed range it needs,
// and rounding it to whole chunks would fetch up to a chunk's worth of
// bytes nobody asked for at each end. The rules:
//
//   - An exact want (ClassExact) fetches the bytes of its range that are
//     neither present nor in flight, and nothing else.
//   - Its missing pieces less than ExactGap apart are one request: the
//     bytes between them (present, or another run's) are read and
//     dropped, never written. A round trip costs the registry more than
//     ExactGap bytes do (see Performance in README.md).
//   - A request covers at most plan.RunChunks chunks' worth of bytes; a
//     longer stretch is cut into several requests, fetched in parallel.
//   - A chunk none of whose bytes is present or in an exact run's flight
//     is wholly missing. Chunk runs take only such chunks, so they land
//     whole chunks and never a byte that is present or coming. A want of
//     the chunk classes meeting a chunk that is not wholly missing (split)
//     fetches its missing bytes by exact runs of the want's class: a bulk
//     read after index reads fetches only what they left.
//   - An exact want never takes bytes of a chunk a chunk run is fetching:
//     they are coming whole. Taking any byte of a stream's edge chunk ends
//     the stream there, as Claim does.
//
// So every byte is in at most one flight, present bytes are never
// written again in their generation, and the digest, which follows the
// present prefix byte by byte, hashes what was served.

// ExactGap is the largest gap between two missing pieces of one exact
// want that one request bridges, reading and dropping what lies between.
const ExactGap = 64 << 10

// wholeMissing reports whether no byte of chunk c is present or in an
// exact run's flight.
func (m *Machine) wholeMissing(c int64) bool {
	cr := m.chunkRange(c)
	return m.present.MissingSize(cr) == cr.Len() && m.exactFlight.MissingSize(cr) == cr.Len()
}

// needed returns the bytes of r that are neither present nor in flight,
// in order.
func (m *Machine) needed(r byterange.Range) []byterange.Range {
	var out []byterange.Range
	add := func(p byterange.Range) {
		if n := len(out); n > 0 && out[n-1].End == p.Start {
			out[n-1].End = p.End
			return
		}
		out = append(out, p)
	}
	for _, gap := range m.present.Missing(r) {
		for _, free := range m.exactFlight.Missing(gap) {
			for off := free.Start; off < free.End; {
				c := off / m.chunkSize
				end := min(free.End, m.chunkRange(c).End)
				if _, busy := m.flights[c]; !busy {
					add(byterange.Range{Start: off, End: end})
				}
				off = end
			}
		}
	}
	return out
}

// wantExact is Want for ClassExact.
func (m *Machine) wantExact(r byterange.Range, plan Plan, offline bool, now time.Time, a *Actions) error {
	pieces := m.needed(r)
	if len(pieces) == 0 {
		return nil // present, or coming
	}
	if err := m.FailFast(now); err != nil {
		return err
	}
	if offline {
		return fmt.Errorf("%w: bytes %d-%d", errdefs.ErrOffline, pieces[0].Start, pieces[len(pieces)-1].End-1)
	}
	m.startExact(pieces, plan, a)
	return nil
}

// startExact starts exact runs of plan's class for pieces, needed bytes
// in order, grouped by the rules above, as far as plan.MaxRuns allows.
func (m *Machine) startExact(pieces []byterange.Range, plan Plan, a *Actions) {
	limit := max(plan.RunChunks, 1) * m.chunkSize
	var own []byterange.Range
	flush := func() bool {
		if len(own) == 0 {
			return true
		}
		if plan.MaxRuns > 0 && m.inClass[plan.Class] >= plan.MaxRuns {
			return false
		}
		a.Fetch = append(a.Fetch, m.startExactRun(own, plan))
		own = nil
		return true
	}
	for _, p := range pieces {
		for p.Len() > 0 {
			if n := len(own); n > 0 && (p.Start-own[n-1].End >= ExactGap || p.Start-own[0].Start >= limit) {
				if !flush() {
					return
				}
			}
			start := p.Start
			if len(own) > 0 {
				start = own[0].Start
			}
			cut := byterange.Range{Start: p.Start, End: min(p.End, start+limit)}
			own = append(own, cut)
			p.Start = cut.End
		}
	}
	flush()
}

// startExactRun records an exact run landing own, and returns it.
func (m *Machine) startExactRun(own []byterange.Range, plan Plan) Run {
	m.nextRun++
	run := Run{
		ID: m.nextRun, Gen: m.gen, Writeback: plan.Writeback,
		Exact: true, Bytes: byterange.Range{Start: own[0].Start, End: own[len(own)-1].End},
		Own: own,
	}
	rs := &runState{class: plan.Class, exact: true}
	for _, o := range own {
		rs.pending.Add(o)
		m.exactFlight.Add(o)
		for c := o.Start / m.chunkSize; c*m.chunkSize < o.End; c++ {
			delete(m.edges, c) // a stream waiting for c ends there
		}
	}
	m.runs[run.ID] = rs
	m.inClass[plan.Class]++
	return run
}

// LandedBytes records that exact run id wrote the bytes of its own that
// lie in r to the file.
func (m *Machine) LandedBytes(gen, id uint64, r byterange.Range, now time.Time) Actions {
	var a Actions
	run, ok := m.runs[id]
	if gen != m.gen || !ok || !run.exact {
		return a
	}
	var landed []byterange.Range
	for _, p := range run.pending.Ranges() {
		if o := (byterange.Range{Start: max(p.Start, r.Start), End: min(p.End, r.End)}); o.Len() > 0 {
			landed = append(landed, o)
		}
	}
	if len(landed) == 0 {
		return a
	}
	for _, o := range landed {
		run.pending.Remove(o)
		m.exactFlight.Remove(o)
	}
	if len(run.pending.Ranges()) == 0 {
		delete(m.runs, id)
		m.inClass[run.class]--
	}
	m.arrived(now, &a, landed...)
	return a
}

// InFlightBytes returns how many bytes of r runs are fetching, for tests
// and logs.
func (m *Machine) InFlightBytes(r byterange.Range) int64 {
	n := r.Len() - m.exactFlight.MissingSize(r)
	for c := r.Start / m.chunkSize; c*m.chunkSize < r.End; c++ {
		if _, busy := m.flights[c]; busy {
			cr := m.chunkRange(c)
			n += min(cr.End, r.End) - max(cr.Start, r.Start)
		}
	}
	return n
}
