package blobfsm

import (
	"errors"
	"reflect"
	"testing"

	"github.com/imgfs/imgfs/internal/byterange"
)

var testStream = Plan{Class: ClassRead, RunChunks: 2, Stream: true}

// A blob of 10 chunks of 10 bytes.
func newStreamMachine(present []byterange.Range) *Machine {
	m, _ := New(100, 10, present, 0, t0)
	return m
}

func wantStream(id uint64, c0, c1, end int64) func(*testing.T, *Machine, Actions, error) {
	return func(t *testing.T, m *Machine, a Actions, err error) {
		t.Helper()
		run, ok := m.runs[id]
		if err != nil || !ok || !run.stream || run.c0 != c0 || run.c1 != c1 || run.end != end {
			t.Errorf("run %d: %+v (error %v), want a stream claiming [%d,%d) of [%d,%d)", id, run, err, c0, c1, c0, end)
		}
		for c := c0; c < c1; c++ {
			if m.flights[c] != id && !m.present.Contains(m.chunkRange(c)) {
				t.Errorf("chunk %d is not run %d's", c, id)
			}
		}
		edge, open := m.edges[c1]
		if want := c1 < end; open != want || open && edge != id {
			t.Errorf("edge at %d: %d %v, want run %d: %v", c1, edge, open, id, want)
		}
	}
}

func wantNoFetch(wake bool) func(*testing.T, *Machine, Actions, error) {
	return func(t *testing.T, m *Machine, a Actions, err error) {
		t.Helper()
		if err != nil || len(a.Fetch) != 0 || a.Wake != wake {
			t.Errorf("actions %+v, error %v; want no request, wake %v", a, err, wake)
		}
	}
}

func TestBlobMachineStreamIsExtendedByLaterWants(t *testing.T) {
	m := newStreamMachine(nil)
	runMachine(t, m, []machineStep{
		{"first want: one request to the end, two chunks claimed", evWant(byterange.Range{Start: 0, End: 20}, testStream), all(
			wantStream(1, 0, 2, 10),
			func(t *testing.T, m *Machine, a Actions, _ error) {
				if len(a.Fetch) != 1 || a.Fetch[0].End != 10 || !a.Fetch[0].Stream {
					t.Errorf("fetch %+v, want one stream run to chunk 10", a.Fetch)
				}
			})},
		{"a want reaching the edge claims for the stream: no request", evWant(byterange.Range{Start: 15, End: 40}, testStream), all(wantNoFetch(true), wantStream(1, 0, 4, 10))},
		{"a bounded plan extends it too", evWant(byterange.Range{Start: 40, End: 50}, testRead), all(wantNoFetch(true), wantStream(1, 0, 5, 10))},
		{"a want of what it holds: nothing", evWant(byterange.Range{Start: 0, End: 50}, testStream), wantNoFetch(false)},
		{"chunks land", func(m *Machine) (Actions, error) {
			for c := int64(0); c < 5; c++ {
				m.Landed(m.gen, 1, c, t0)
			}
			return Actions{}, nil
		}, func(t *testing.T, m *Machine, _ Actions, _ error) {
			if _, open := m.runs[1]; !open || m.RunLeft(1) != 0 || !m.AwaitsClaim(0, 1, 5) {
				t.Errorf("an open stream with nothing left to land should stay open at its edge: %+v", m.runs[1])
			}
		}},
		{"the stream ends", func(m *Machine) (Actions, error) { return m.StreamEnded(m.gen, 1), nil }, func(t *testing.T, m *Machine, a Actions, _ error) {
			if _, open := m.runs[1]; open || len(m.edges) != 0 || m.AwaitsClaim(0, 1, 5) || m.inClass[ClassRead] != 0 {
				t.Errorf("run %+v edges %v", m.runs[1], m.edges)
			}
		}},
		{"a later want starts a new stream", evWant(byterange.Range{Start: 50, End: 60}, testStream), all(wantRuns([2]int64{5, 6}), wantStream(2, 5, 6, 10))},
	})
}

func TestBlobMachineStreamStopsAtWhatOthersHave(t *testing.T) {
	m := newStreamMachine([]byterange.Range{{Start: 70, End: 80}})
	runMachine(t, m, []machineStep{
		{"a bounded run at chunk 4", evWant(byterange.Range{Start: 40, End: 50}, testRead), wantRuns([2]int64{4, 5})},
		{"a stream from 0 reaches only to the chunk in flight", evWant(byterange.Range{Start: 0, End: 20}, testStream), wantStream(2, 0, 2, 4)},
		{"extended to its end: no edge left", evWant(byterange.Range{Start: 20, End: 40}, testStream), all(wantNoFetch(true), wantStream(2, 0, 4, 4))},
		{"a stream from 5 reaches only to the present chunk 7", evWant(byterange.Range{Start: 50, End: 60}, testStream), wantStream(3, 5, 6, 7)},
	})
}

func TestBlobMachineStreamEdgeTakenByAnotherRun(t *testing.T) {
	m := newStreamMachine(nil)
	runMachine(t, m, []machineStep{
		{"stream", evWant(byterange.Range{Start: 0, End: 20}, testStream), wantStream(1, 0, 2, 10)},
		{"a whole-blob answer's lead", evWant(byterange.Range{Start: 90, End: 100}, testRead), wantRuns([2]int64{9, 10})},
		{"the lead claims the stream's edge", func(m *Machine) (Actions, error) {
			if !m.Claim(m.gen, 2, 2) {
				t.Error("the edge chunk is free: the claim should succeed")
			}
			return Actions{}, nil
		}, func(t *testing.T, m *Machine, _ Actions, _ error) {
			if m.AwaitsClaim(0, 1, 2) {
				t.Error("the stream still waits for a chunk another run has")
			}
		}},
		{"a want after it starts no second claim on chunk 2", evWant(byterange.Range{Start: 20, End: 40}, testStream), all(wantRuns([2]int64{3, 4}), wantStream(3, 3, 4, 9))},
	})
}

func TestBlobMachineStreamFailureAndMismatchFreeItsChunks(t *testing.T) {
	m := newStreamMachine(nil)
	runMachine(t, m, []machineStep{
		{"a want of four chunks: a stream that claims them all", evWant(byterange.Range{Start: 0, End: 40}, testStream), all(wantRuns([2]int64{0, 2}), wantStream(1, 0, 4, 10))},
		{"fails", evFail(0, 1, errors.New("reset"), t0), func(t *testing.T, m *Machine, a Actions, _ error) {
			if !a.Wake || len(m.flights) != 0 || len(m.edges) != 0 || len(m.runs) != 0 {
				t.Errorf("flights %v edges %v runs %v", m.flights, m.edges, m.runs)
			}
		}},
		{"a new stream", evWant(byterange.Range{Start: 0, End: 20}, testStream), wantStream(2, 0, 2, 10)},
		{"chunk 0 and 1 land", func(m *Machine) (Actions, error) {
			m.Landed(0, 2, 0, t0)
			return m.Landed(0, 2, 1, t0), nil
		}, nil},
		{"a mismatch drops the generation", func(m *Machine) (Actions, error) { return m.Rejected(0, t0), nil }, func(t *testing.T, m *Machine, _ Actions, _ error) {
			if m.AwaitsClaim(0, 2, 2) || m.AwaitsClaim(1, 2, 2) || !reflect.DeepEqual(m.edges, map[int64]uint64{}) {
				t.Errorf("edges %v survive the generation", m.edges)
			}
		}},
		{"its end event is ignored", func(m *Machine) (Actions, error) { return m.StreamEnded(0, 2), nil }, nothing},
	})
}

func TestBlobMachineHashBehind(t *testing.T) {
	// 100 chunks of 10 bytes; MaxHeld chunks past the frontier is the line.
	tests := []struct {
		name     string
		present  []byterange.Range
		flights  []int64 // chunks in flight
		hashedTo int64
		stopped  bool // the hasher gave up (hashStopped)
		c        int64
		want     bool
	}{
		{"nothing present: no hasher runs", nil, nil, 0, false, MaxHeld, false},
		{"the prefix reaches c, MaxHeld past the frontier", []byterange.Range{{Start: 0, End: 500}}, nil, 0, false, MaxHeld, true},
		{"one chunk nearer: held, no wait", []byterange.Range{{Start: 0, End: 500}}, nil, 0, false, MaxHeld - 1, false},
		{"further on, same", []byterange.Range{{Start: 0, End: 500}}, nil, 0, false, MaxHeld + 10, true},
		{"the frontier has moved", []byterange.Range{{Start: 0, End: 500}}, nil, 100, false, MaxHeld + 9, false},
		{"a missing chunk below c: the hasher cannot catch up by itself", []byterange.Range{{Start: 0, End: 300}, {Start: 310, End: 500}}, nil, 0, false, MaxHeld + 2, false},
		{"c just past the prefix", []byterange.Range{{Start: 0, End: 400}}, nil, 0, false, 40, true},
		{"c beyond the prefix's end", []byterange.Range{{Start: 0, End: 400}}, nil, 0, false, 41, false},
		{"the chunks between are in flight: they land without a want", []byterange.Range{{Start: 0, End: 300}}, []int64{30, 31, 32, 33, 34, 35}, 0, false, 36, true},
		{"one chunk between is neither", []byterange.Range{{Start: 0, End: 300}}, []int64{30, 31, 33, 34, 35}, 0, false, 36, false},
		{"verifying: nothing is fetched any more", []byterange.Range{{Start: 0, End: 1000}}, nil, 0, false, 60, false},
		// A fill's parallel runs: the hasher has caught up with the prefix
		// and waits for its next chunk, which another run is landing.
		{"hasher idle, the prefix's next chunk in flight: its landing restarts it", []byterange.Range{{Start: 0, End: 300}}, inFlight(30, 70), 300, false, 70, true},
		{"hasher idle, the prefix's next chunk in flight, c held", []byterange.Range{{Start: 0, End: 300}}, inFlight(30, 70), 300, false, 61, false},
		{"the hasher gave up and nothing below c is in flight: no one moves the frontier", []byterange.Range{{Start: 0, End: 500}}, nil, 0, true, MaxHeld, false},
		{"the hasher gave up, but a chunk below c is in flight", []byterange.Range{{Start: 0, End: 300}}, inFlight(30, 40), 0, true, 40, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := New(1000, 10, tt.present, tt.hashedTo, t0)
			for _, c := range tt.flights {
				m.flights[c] = 1
			}
			if tt.stopped {
				m.HashStopped(m.gen, errors.New("read failed"))
			}
			if got := m.HashBehind(tt.c); got != tt.want {
				t.Errorf("hashBehind(%d) with the frontier at %d, hashing %v, phase %v: %v, want %v", tt.c, tt.hashedTo, m.hashing, m.phase, got, tt.want)
			}
		})
	}
}

// inFlight lists the chunks [c0, c1).
func inFlight(c0, c1 int64) []int64 {
	var cs []int64
	for c := c0; c < c1; c++ {
		cs = append(cs, c)
	}
	return cs
}
