package blobfsm

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/imgfs/imgfs/internal/byterange"
)

// Exact runs are tested at a scale where ExactGap matters: chunks of
// 256 KiB, and a blob of four chunks and 10 KiB.
const (
	kib     = int64(1024)
	xChunk  = 256 * kib
	xSize   = 4*xChunk + 10*kib
	xGapLen = ExactGap
)

var (
	testExact     = Plan{Class: ClassExact, RunChunks: 2}
	testExactBulk = Plan{Class: ClassBulk, RunChunks: 4, MaxRuns: 8}
)

func newExactMachine(present ...byterange.Range) *Machine {
	m, _ := New(xSize, xChunk, present, 0, t0)
	return m
}

func rng(a, b int64) byterange.Range { return byterange.Range{Start: a, End: b} }

// exactRun is what a test expects of an exact run: the bytes it requests
// and those it lands.
type exactRun struct {
	bytes byterange.Range
	own   []byterange.Range
}

// wantFetch checks the runs a want returned: exact runs by their bytes,
// chunk runs by their chunks, in order.
func wantFetch(exact []exactRun, chunks ...[2]int64) func(*testing.T, *Machine, Actions, error) {
	return func(t *testing.T, m *Machine, a Actions, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("error %v", err)
		}
		var gotExact []exactRun
		var gotChunks [][2]int64
		for _, r := range a.Fetch {
			if r.Exact {
				gotExact = append(gotExact, exactRun{r.Bytes, r.Own})
			} else {
				gotChunks = append(gotChunks, [2]int64{r.C0, r.C1})
			}
		}
		if !reflect.DeepEqual(gotExact, exact) || !reflect.DeepEqual(gotChunks, chunks) {
			t.Errorf("exact runs %v, chunk runs %v; want %v and %v", gotExact, gotChunks, exact, chunks)
		}
		checkFlights(t, m)
	}
}

// checkFlights holds the machine to the rules of exact.go: no byte is in
// two flights or both present and in flight, a chunk in a chunk run's
// flight is wholly missing, and presentBytes matches the set.
func checkFlights(t *testing.T, m *Machine) {
	t.Helper()
	var pending byterange.Set
	for id, run := range m.runs {
		if !run.exact {
			continue
		}
		for _, p := range run.pending.Ranges() {
			if pending.MissingSize(p) != p.Len() {
				t.Errorf("run %d's bytes %v are another exact run's too", id, p)
			}
			if m.present.MissingSize(p) != p.Len() {
				t.Errorf("run %d's bytes %v are present", id, p)
			}
			pending.Add(p)
		}
	}
	if pending.String() != m.exactFlight.String() {
		t.Errorf("exact flight %v, the runs hold %v", m.exactFlight.String(), pending.String())
	}
	for c := range m.flights {
		cr := m.chunkRange(c)
		if m.present.MissingSize(cr) != cr.Len() || m.exactFlight.MissingSize(cr) != cr.Len() {
			t.Errorf("chunk %d is in a chunk run's flight but not wholly missing", c)
		}
	}
	if m.presentBytes != m.present.Size() {
		t.Errorf("presentBytes %d, the set holds %d", m.presentBytes, m.present.Size())
	}
}

func evLandBytes(gen, id uint64, r byterange.Range) func(*Machine) (Actions, error) {
	return func(m *Machine) (Actions, error) { return m.LandedBytes(gen, id, r, t0), nil }
}

func wantPresent(s string) func(*testing.T, *Machine, Actions, error) {
	return func(t *testing.T, m *Machine, a Actions, err error) {
		t.Helper()
		if m.present.String() != s {
			t.Errorf("present %q, want %q", m.present.String(), s)
		}
		checkFlights(t, m)
	}
}

func TestBlobMachineExactWants(t *testing.T) {
	tests := []struct {
		name    string
		present []byterange.Range
		before  []func(*Machine) (Actions, error) // wants already made
		want    byterange.Range
		plan    Plan
		exact   []exactRun
		chunks  [][2]int64
	}{
		{
			name: "an empty blob: exactly the range, not its chunk",
			want: rng(10*kib, 30*kib), plan: testExact,
			exact: []exactRun{{rng(10*kib, 30*kib), []byterange.Range{rng(10*kib, 30*kib)}}},
		},
		{
			name:    "a present gap under ExactGap is bridged: read, not written",
			present: []byterange.Range{rng(15*kib, 20*kib)},
			want:    rng(10*kib, 30*kib), plan: testExact,
			exact: []exactRun{{rng(10*kib, 30*kib), []byterange.Range{rng(10*kib, 15*kib), rng(20*kib, 30*kib)}}},
		},
		{
			name:    "a present gap of ExactGap or more splits the request",
			present: []byterange.Range{rng(100*kib, 100*kib+xGapLen)},
			want:    rng(50*kib, 200*kib+xGapLen), plan: testExact,
			exact: []exactRun{
				{rng(50*kib, 100*kib), []byterange.Range{rng(50*kib, 100*kib)}},
				{rng(100*kib+xGapLen, 200*kib+xGapLen), []byterange.Range{rng(100*kib+xGapLen, 200*kib+xGapLen)}},
			},
		},
		{
			name:    "present at both ends: only the middle",
			present: []byterange.Range{rng(0, 12*kib), rng(20*kib, 40*kib)},
			want:    rng(0, 40*kib), plan: testExact,
			exact: []exactRun{{rng(12*kib, 20*kib), []byterange.Range{rng(12*kib, 20*kib)}}},
		},
		{
			name:   "bytes of a chunk in a chunk run's flight are left to it",
			before: []func(*Machine) (Actions, error){evWant(rng(xChunk, xChunk+1), testRead)},
			want:   rng(200*kib, 300*kib), plan: testExact,
			exact: []exactRun{{rng(200*kib, xChunk), []byterange.Range{rng(200*kib, xChunk)}}},
		},
		{
			name:   "bytes another exact run fetches are left to it",
			before: []func(*Machine) (Actions, error){evWant(rng(10*kib, 30*kib), testExact)},
			want:   rng(20*kib, 40*kib), plan: testExact,
			exact: []exactRun{{rng(30*kib, 40*kib), []byterange.Range{rng(30*kib, 40*kib)}}},
		},
		{
			name:   "all of it present or coming: nothing",
			before: []func(*Machine) (Actions, error){evWant(rng(10*kib, 30*kib), testExact)},
			want:   rng(12*kib, 28*kib), plan: testExact,
		},
		{
			name: "a long stretch is cut at RunChunks chunks' worth of bytes",
			want: rng(kib, 3*xChunk), plan: Plan{Class: ClassExact, RunChunks: 1},
			exact: []exactRun{
				{rng(kib, kib+xChunk), []byterange.Range{rng(kib, kib+xChunk)}},
				{rng(kib+xChunk, kib+2*xChunk), []byterange.Range{rng(kib+xChunk, kib+2*xChunk)}},
				{rng(kib+2*xChunk, 3*xChunk), []byterange.Range{rng(kib+2*xChunk, 3*xChunk)}},
			},
		},
		{
			name:    "a bulk want fetches a split chunk's missing bytes exactly, whole chunks as chunks",
			present: []byterange.Range{rng(10*kib, 20*kib)},
			want:    rng(0, 2*xChunk), plan: testExactBulk,
			exact:  []exactRun{{rng(0, xChunk), []byterange.Range{rng(0, 10*kib), rng(20*kib, xChunk)}}},
			chunks: [][2]int64{{1, 2}},
		},
		{
			name:    "a chunk run stops before a split chunk and goes on after it",
			present: []byterange.Range{rng(2*xChunk+100*kib, 2*xChunk+200*kib)},
			want:    rng(0, xSize), plan: testExactBulk,
			exact: []exactRun{
				{rng(2*xChunk, 2*xChunk+100*kib), []byterange.Range{rng(2*xChunk, 2*xChunk+100*kib)}},
				{rng(2*xChunk+200*kib, 3*xChunk), []byterange.Range{rng(2*xChunk+200*kib, 3*xChunk)}},
			},
			chunks: [][2]int64{{0, 2}, {3, 5}},
		},
		{
			name:    "a split chunk's exact runs count against the plan's MaxRuns",
			present: []byterange.Range{rng(10*kib, 20*kib), rng(xChunk+10*kib, xChunk+20*kib)},
			want:    rng(0, xSize), plan: Plan{Class: ClassBulk, RunChunks: 4, MaxRuns: 1},
			exact: []exactRun{{rng(0, xChunk), []byterange.Range{rng(0, 10*kib), rng(20*kib, xChunk)}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newExactMachine(tt.present...)
			for _, ev := range tt.before {
				if _, err := ev(m); err != nil {
					t.Fatal(err)
				}
			}
			a, err := m.Want(tt.want, tt.plan, false, t0)
			wantFetch(tt.exact, tt.chunks...)(t, m, a, err)
		})
	}
}

func TestBlobMachineExactLanding(t *testing.T) {
	m := newExactMachine(rng(15*kib, 20*kib))
	runMachine(t, m, []machineStep{
		{"want [0,30K): one request, two pieces", evWant(rng(0, 30*kib), testExact),
			wantFetch([]exactRun{{rng(0, 30*kib), []byterange.Range{rng(0, 15*kib), rng(20*kib, 30*kib)}}})},
		{"the first piece lands in two parts; the prefix grows: hash it", evLandBytes(0, 1, rng(0, 8*kib)), all(
			wantPresent("[0,8192) [15360,20480)"), wantHash(0, 8*kib, false))},
		{"a landing of bridged bytes changes nothing", evLandBytes(0, 1, rng(15*kib, 20*kib)), nothing},
		{"the rest of the request lands, past the bridged bytes", evLandBytes(0, 1, rng(8*kib, 30*kib)), all(
			wantPresent("[0,30720)"),
			func(t *testing.T, m *Machine, a Actions, _ error) {
				if len(m.runs) != 0 || m.inClass[ClassExact] != 0 || m.exactFlight.Size() != 0 {
					t.Errorf("runs %v, in class %d, exact flight %s: want the run finished", m.runs, m.inClass[ClassExact], m.exactFlight.String())
				}
				if m.presentBytes != 30*kib {
					t.Errorf("presentBytes %d", m.presentBytes)
				}
			})},
		{"a late landing of a finished run: nothing", evLandBytes(0, 1, rng(0, 30*kib)), nothing},
		{"hashing reaches the prefix", evHashed(0, 8*kib), wantHash(8*kib, 30*kib, false)},
	})
}

func TestBlobMachineExactFailureAndMismatch(t *testing.T) {
	m := newExactMachine()
	runMachine(t, m, []machineStep{
		{"want", evWant(rng(0, 30*kib), testExact), wantFetch([]exactRun{{rng(0, 30*kib), []byterange.Range{rng(0, 30*kib)}}})},
		{"part lands", evLandBytes(0, 1, rng(0, 10*kib)), wantPresent("[0,10240)")},
		{"the run fails: its other bytes are free", evFail(0, 1, errors.New("reset"), t0), all(
			wantPresent("[0,10240)"),
			func(t *testing.T, m *Machine, a Actions, _ error) {
				if m.exactFlight.Size() != 0 || len(m.runs) != 0 {
					t.Errorf("exact flight %s, runs %v", m.exactFlight.String(), m.runs)
				}
			})},
		{"asked again: only what did not land", evWant(rng(0, 30*kib), testExact),
			wantFetch([]exactRun{{rng(10*kib, 30*kib), []byterange.Range{rng(10*kib, 30*kib)}}})},
		{"rejected by a layer format's digest: a new generation with nothing in flight", func(m *Machine) (Actions, error) {
			return m.Rejected(0, t0), nil
		}, all(wantPresent(""), func(t *testing.T, m *Machine, a Actions, _ error) {
			if !a.Replace || m.exactFlight.Size() != 0 || len(m.runs) != 0 || m.gen != 1 {
				t.Errorf("actions %+v, exact flight %s, runs %v, gen %d", a, m.exactFlight.String(), m.runs, m.gen)
			}
		})},
		{"a landing from the old generation is ignored", evLandBytes(0, 2, rng(10*kib, 30*kib)), all(nothing, wantPresent(""))},
	})
}

func TestBlobMachineExactMeetsChunkRuns(t *testing.T) {
	m := newExactMachine()
	stream := Plan{Class: ClassRead, RunChunks: 1, Stream: true}
	runMachine(t, m, []machineStep{
		{"a stream claims chunk 0; its edge is chunk 1", evWant(rng(0, 10), stream), wantFetch(nil, [2]int64{0, 1})},
		{"an exact want takes bytes of chunk 1: the edge goes", evWant(rng(xChunk+10*kib, xChunk+20*kib), testExact), all(
			wantFetch([]exactRun{{rng(xChunk+10*kib, xChunk+20*kib), []byterange.Range{rng(xChunk+10*kib, xChunk+20*kib)}}}),
			func(t *testing.T, m *Machine, a Actions, _ error) {
				if m.AwaitsClaim(0, 1, 1) {
					t.Errorf("the stream still awaits chunk 1")
				}
			})},
		{"a whole-blob answer may not claim the split chunk, nor the one in flight", func(m *Machine) (Actions, error) {
			if m.Claim(0, 1, 1) || m.Claim(0, 2, 0) {
				t.Errorf("claimed a split chunk, or another run's")
			}
			if !m.Claim(0, 1, 2) {
				t.Errorf("could not claim a wholly missing chunk")
			}
			return Actions{}, nil
		}, func(t *testing.T, m *Machine, _ Actions, _ error) { checkFlights(t, m) }},
		{"chunk 0 lands", evLand(0, 1, 0), wantPresent("[0,262144)")},
		{"hashed so far", evHashed(0, xChunk), nil},
		{"HashBehind counts an exact flight as coming, and a free gap as not", func(m *Machine) (Actions, error) {
			// Chunk 1: [10K,20K) in an exact flight, the rest free.
			if m.HashBehind(2 + MaxHeld) {
				t.Errorf("held back though chunk 1 has bytes nothing fetches")
			}
			return Actions{}, nil
		}, nil},
		{"a read wants the rest of chunk 1: one exact run, bridging the other's flight", evWant(rng(xChunk, 2*xChunk), testRead),
			wantFetch([]exactRun{
				{rng(xChunk, 2*xChunk), []byterange.Range{rng(xChunk, xChunk+10*kib), rng(xChunk+20*kib, 2*xChunk)}},
			})},
	})
}

// TestBlobMachineExactRandom drives the machine with random wants of
// every class, landings in random pieces, failures and rejections, and
// holds it to the rules of exact.go after each event: no byte in two
// flights, no landing over a present byte, chunk runs only over wholly
// missing chunks; and in the end, once everything lands, the blob is all
// present.
func TestBlobMachineExactRandom(t *testing.T) {
	plans := []Plan{testExact, testRead, testExactBulk, {Class: ClassRead, RunChunks: 2, Stream: true}, {Class: ClassExact, RunChunks: 1}}
	for seed := uint64(0); seed < 200; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		m := newExactMachine()
		var open []Run
		for step := 0; step < 60; step++ {
			switch k := r.IntN(10); {
			case k < 4 || len(open) == 0:
				a := r.Int64N(xSize)
				b := min(xSize, a+1+r.Int64N(2*xChunk))
				acts, err := m.Want(rng(a, b), plans[r.IntN(len(plans))], false, t0)
				if err != nil {
					continue // after a rejection: the backoff
				}
				open = append(open, acts.Fetch...)
			case k < 9:
				i := r.IntN(len(open))
				run := open[i]
				if run.Exact {
					a := run.Bytes.Start + r.Int64N(run.Bytes.Len())
					b := min(run.Bytes.End, a+1+r.Int64N(run.Bytes.Len()))
					m.LandedBytes(run.Gen, run.ID, rng(a, b), t0)
				} else {
					for c := run.C0; c < run.End; c++ {
						if m.Owns(run.Gen, run.ID, c) {
							m.Landed(run.Gen, run.ID, c, t0)
							break
						}
					}
				}
				if _, ok := m.runs[run.ID]; !ok {
					open = append(open[:i], open[i+1:]...)
				}
			default:
				i := r.IntN(len(open))
				if r.IntN(8) == 0 {
					m.Rejected(m.gen, t0)
					open = nil
				} else {
					m.FetchFailed(open[i].Gen, open[i].ID, errors.New("reset"), t0)
					open = append(open[:i], open[i+1:]...)
				}
			}
			checkFlights(t, m)
			if t.Failed() {
				t.Fatalf("seed %d step %d: present %s exact flight %s flights %v", seed, step, m.present.String(), m.exactFlight.String(), m.flights)
			}
		}
		// Finish: land every open run whole, then fill what is left.
		later := t0.Add(PermanentErrorWindow)
		for round := 0; m.phase == PhaseFetching && round < 50; round++ {
			for _, run := range open {
				if run.Exact {
					m.LandedBytes(run.Gen, run.ID, run.Bytes, later)
					continue
				}
				for c := run.C0; c < run.End; c++ {
					if !m.Owns(run.Gen, run.ID, c) && !m.Claim(run.Gen, run.ID, c) {
						continue
					}
					m.Landed(run.Gen, run.ID, c, later)
				}
				m.StreamEnded(run.Gen, run.ID)
			}
			if len(m.runs) != 0 {
				t.Fatalf("seed %d: runs left after landing all: %v", seed, m.runs)
			}
			a, err := m.Want(rng(0, xSize), testExactBulk, false, later)
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			open = a.Fetch
			checkFlights(t, m)
		}
		if m.phase != PhaseVerifying || m.presentBytes != xSize {
			t.Fatalf("seed %d: phase %s with %d of %d bytes present", seed, m.phase, m.presentBytes, xSize)
		}
	}
}
