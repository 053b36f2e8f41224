package blobfsm

import "github.com/imgfs/imgfs/internal/byterange"

// Stream runs (Plan.Stream): one request reaching to the end of a
// missing stretch, whose chunks are claimed only as wants reach them.
// Between claims the fetch stops reading, so the source is paced by the
// readers; a stream nobody extends ends (StreamEnded) and its request is
// closed. Invariants:
//   - a stream run claims chunks in order, so its claims are [c0, c1) and
//     it lands them in that order;
//   - m.edges[run.c1] == run.id while the run may claim more, and that
//     chunk is wholly missing and in no flight: a chunk another run takes
//     (Claim, or an exact run taking any of its bytes) stops being an
//     edge, and the stream ends there.

// extendStream claims for stream run id the chunks from its edge c on,
// up to max chunks, the end of the wanted gap or of its request, or the
// first chunk in flight, and returns the chunk after the last one
// claimed. c must be the run's edge.
func (m *Machine) extendStream(id uint64, c, gapEnd, max int64) int64 {
	run := m.runs[id]
	delete(m.edges, c)
	c0 := c
	if run == nil {
		return c // cannot happen: dropRun removes a run's edges with it
	}
	for c < run.end && c*m.chunkSize < gapEnd && c-c0 < max {
		if _, busy := m.flights[c]; busy || !m.wholeMissing(c) {
			break
		}
		m.flights[c] = id
		c++
	}
	run.c1 = c
	run.left += int(c - c0)
	if c < run.end {
		if _, busy := m.flights[c]; !busy && m.wholeMissing(c) {
			m.edges[c] = id
		}
	}
	return c
}

// MaxHeld is how many landed chunks' buffers the driver holds per blob,
// for the hasher and for reads, so that neither reads the file back while
// the hasher keeps pace. HashBehind holds runs back at that distance from
// the hash frontier.
const MaxHeld = 32

// HashBehind reports whether a read or fill run should wait for the
// hasher before it lands chunk c: c is MaxHeld chunks or more past the
// hash frontier, so that its buffer could not be held;
// every chunk below c is present or in flight, so the hasher can catch up
// without any other want; and the hasher will move: it is running, or a
// chunk below c is in flight, and landing the first of them extends the
// present prefix, which starts it. Waiting then costs nothing the hasher
// was not going to spend, and it keeps the hasher and the readers off the
// disk.
func (m *Machine) HashBehind(c int64) bool {
	if m.phase != PhaseFetching || c*m.chunkSize < m.hashedTo+MaxHeld*m.chunkSize {
		return false
	}
	moves := m.hashing
	for k := m.present.PrefixEnd() / m.chunkSize; k < c; k++ {
		if _, busy := m.flights[k]; busy {
			moves = true
			continue
		}
		cr := m.chunkRange(k)
		if m.present.Contains(cr) {
			continue
		}
		for _, gap := range m.present.Missing(cr) {
			if m.exactFlight.MissingSize(gap) > 0 {
				return false // a byte below c that nothing fetches
			}
			moves = true
		}
	}
	return moves
}

// stretchEnd returns the end of the missing stretch from chunk c: the
// first chunk from c on that is in flight or not wholly missing, or the
// chunk count.
func (m *Machine) stretchEnd(c int64) int64 {
	n := (m.size + m.chunkSize - 1) / m.chunkSize
	gap := m.present.FirstGap(byterange.Range{Start: c * m.chunkSize, End: m.size})
	end := min(n, (gap.End+m.chunkSize-1)/m.chunkSize)
	for ; c < end; c++ {
		if _, busy := m.flights[c]; busy || !m.wholeMissing(c) {
			return c
		}
	}
	return end
}

// AwaitsClaim reports whether stream run id of generation gen may still be
// given chunk c, its edge, by a later want.
func (m *Machine) AwaitsClaim(gen, id uint64, c int64) bool {
	return gen == m.gen && m.phase == PhaseFetching && m.edges[c] == id
}

// StreamEnded records that stream run id closed its request. Chunks it
// claimed and did not land are free to be fetched again.
func (m *Machine) StreamEnded(gen, id uint64) Actions {
	if gen != m.gen || !m.dropRun(id) {
		return Actions{}
	}
	return Actions{Wake: true}
}

// dropRun forgets run id, freeing the chunks it has not landed and its
// edge, and reports whether there was such a run.
func (m *Machine) dropRun(id uint64) bool {
	run, ok := m.runs[id]
	if !ok {
		return false
	}
	for _, r := range run.pending.Ranges() {
		m.exactFlight.Remove(r)
	}
	for c := run.c0; c < run.c1; c++ {
		if m.flights[c] == id {
			delete(m.flights, c)
		}
	}
	for c, owner := range m.edges { // one edge per open stream: few
		if owner == id {
			delete(m.edges, c)
		}
	}
	delete(m.runs, id)
	m.inClass[run.class]--
	return true
}
