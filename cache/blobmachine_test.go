package cache

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/imgfs/imgfs/internal/byterange"
	"github.com/imgfs/imgfs/internal/errdefs"
)

// The machine's tests drive it with events alone: no files, no goroutines,
// no sleeps. Each step names an event, applies it, and checks the actions
// and the state that follow.

var t0 = time.Unix(1_000_000, 0)

var (
	testRead = fetchPlan{class: classRead, runChunks: 2}
	testBulk = fetchPlan{class: classBulk, runChunks: 2, maxRuns: 2}
)

type machineStep struct {
	name  string
	event func(m *blobMachine) (blobActions, error)
	check func(t *testing.T, m *blobMachine, a blobActions, err error)
}

func runMachine(t *testing.T, m *blobMachine, steps []machineStep) {
	t.Helper()
	for _, s := range steps {
		a, err := s.event(m)
		if s.check != nil {
			s.check(t, m, a, err)
		}
		if t.Failed() {
			t.Fatalf("after step %q: phase %s gen %d present %v flights %v", s.name, m.phase, m.gen, m.present.String(), m.flights)
		}
	}
}

// Event helpers.
func evWant(r byterange.Range, plan fetchPlan) func(*blobMachine) (blobActions, error) {
	return func(m *blobMachine) (blobActions, error) { return m.want(r, plan, false, t0) }
}

func evWantAt(r byterange.Range, plan fetchPlan, now time.Time) func(*blobMachine) (blobActions, error) {
	return func(m *blobMachine) (blobActions, error) { return m.want(r, plan, false, now) }
}

func evLand(gen, id uint64, c int64) func(*blobMachine) (blobActions, error) {
	return func(m *blobMachine) (blobActions, error) { return m.landed(gen, id, c, t0), nil }
}

func evFail(gen, id uint64, err error, at time.Time) func(*blobMachine) (blobActions, error) {
	return func(m *blobMachine) (blobActions, error) { return m.fetchFailed(gen, id, err, at), nil }
}

func evHashed(gen uint64, to int64) func(*blobMachine) (blobActions, error) {
	return func(m *blobMachine) (blobActions, error) { return m.hashed(gen, to), nil }
}

func evMatch(gen uint64) func(*blobMachine) (blobActions, error) {
	return func(m *blobMachine) (blobActions, error) { return m.matched(gen), nil }
}

func evMismatch(gen uint64, at time.Time) func(*blobMachine) (blobActions, error) {
	return func(m *blobMachine) (blobActions, error) { return m.mismatched(gen, at), nil }
}

// Check helpers.
func wantRuns(runs ...[2]int64) func(*testing.T, *blobMachine, blobActions, error) {
	return func(t *testing.T, m *blobMachine, a blobActions, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("error %v", err)
		}
		var got [][2]int64
		for _, r := range a.fetch {
			got = append(got, [2]int64{r.c0, r.c1})
		}
		if !reflect.DeepEqual(got, runs) {
			t.Errorf("runs %v, want %v", got, runs)
		}
	}
}

func wantErr(want error) func(*testing.T, *blobMachine, blobActions, error) {
	return func(t *testing.T, m *blobMachine, a blobActions, err error) {
		t.Helper()
		if !errors.Is(err, want) || len(a.fetch) != 0 {
			t.Errorf("error %v with runs %v, want %v and no runs", err, a.fetch, want)
		}
	}
}

func wantHash(from, to int64, final bool) func(*testing.T, *blobMachine, blobActions, error) {
	return func(t *testing.T, m *blobMachine, a blobActions, err error) {
		t.Helper()
		if !a.hash || a.hashFrom != from || a.hashTo != to || a.hashFinal != final {
			t.Errorf("hash action %v [%d,%d) final %v, want [%d,%d) final %v", a.hash, a.hashFrom, a.hashTo, a.hashFinal, from, to, final)
		}
	}
}

func wantPhase(p blobPhase) func(*testing.T, *blobMachine, blobActions, error) {
	return func(t *testing.T, m *blobMachine, a blobActions, err error) {
		t.Helper()
		if m.phase != p {
			t.Errorf("phase %s, want %s", m.phase, p)
		}
	}
}

func all(checks ...func(*testing.T, *blobMachine, blobActions, error)) func(*testing.T, *blobMachine, blobActions, error) {
	return func(t *testing.T, m *blobMachine, a blobActions, err error) {
		t.Helper()
		for _, c := range checks {
			c(t, m, a, err)
		}
	}
}

func nothing(t *testing.T, m *blobMachine, a blobActions, err error) {
	t.Helper()
	if !reflect.DeepEqual(a, blobActions{}) || err != nil {
		t.Errorf("actions %+v, error %v; want none", a, err)
	}
}

// A blob of 4 chunks of 10 bytes, the last one short: 35 bytes.
func newTestMachine(present []byterange.Range, hashedTo int64) (*blobMachine, blobActions) {
	return newBlobMachine(35, 10, present, hashedTo, t0)
}

func TestBlobMachineHappyPath(t *testing.T) {
	m, a := newTestMachine(nil, 0)
	if !reflect.DeepEqual(a, blobActions{}) || m.phase != phaseFetching {
		t.Fatalf("fresh machine: %+v %s", a, m.phase)
	}
	runMachine(t, m, []machineStep{
		{"want a mid-chunk read", evWant(byterange.Range{Start: 12, End: 14}, testRead), wantRuns([2]int64{1, 2})},
		{"want it again: in flight, nothing new", evWant(byterange.Range{Start: 12, End: 14}, testRead), nothing},
		{"want all: runs of two skip the busy chunk", evWant(byterange.Range{Start: 0, End: 35}, testRead), wantRuns([2]int64{0, 1}, [2]int64{2, 4})},
		{"chunk 1 lands: no prefix yet", evLand(0, 1, 1), func(t *testing.T, m *blobMachine, a blobActions, _ error) {
			if a.hash || !a.wake || !m.present.Contains(byterange.Range{Start: 10, End: 20}) {
				t.Errorf("%+v", a)
			}
		}},
		{"chunk 0 lands: hash the prefix", evLand(0, 2, 0), wantHash(0, 20, false)},
		{"chunk 3 lands while hashing: no second hasher", evLand(0, 3, 3), func(t *testing.T, m *blobMachine, a blobActions, _ error) {
			if a.hash {
				t.Error("second hash action while one is outstanding")
			}
		}},
		{"hashed to 20: nothing more to hash", evHashed(0, 20), func(t *testing.T, m *blobMachine, a blobActions, _ error) {
			if a.hash || m.hashing || m.hashedTo != 20 {
				t.Errorf("%+v hashing %v to %d", a, m.hashing, m.hashedTo)
			}
		}},
		{"last chunk lands: verifying, sync, final hash", evLand(0, 3, 2), all(wantPhase(phaseVerifying), wantHash(20, 35, true), func(t *testing.T, m *blobMachine, a blobActions, _ error) {
			if !a.sync {
				t.Error("no early sync")
			}
		})},
		{"want when all present: nothing", evWant(byterange.Range{Start: 0, End: 35}, testBulk), nothing},
		{"hashed to the end: still waiting for verdict", evHashed(0, 35), wantPhase(phaseVerifying)},
		{"match: commit", evMatch(0), func(t *testing.T, m *blobMachine, a blobActions, _ error) {
			if !a.commit || !m.verified() || m.phase != phaseCommitting {
				t.Errorf("%+v %s", a, m.phase)
			}
		}},
		{"committed", func(m *blobMachine) (blobActions, error) { return m.committed(), nil }, wantPhase(phaseComplete)},
		{"want after complete: nothing", evWant(byterange.Range{Start: 0, End: 35}, testRead), nothing},
	})
}

func TestBlobMachineResume(t *testing.T) {
	tests := []struct {
		name         string
		present      []byterange.Range
		hashedTo     int64
		wantPresent  string
		wantHashedTo int64
		wantPhase    blobPhase
		wantHash     bool
		wantFinal    bool
	}{
		{"empty", nil, 0, "", 0, phaseFetching, false, false},
		{"prefix not hashed: hash it", []byterange.Range{{Start: 0, End: 20}}, 0, "[0,20)", 0, phaseFetching, true, false},
		{"prefix hashed: nothing to do", []byterange.Range{{Start: 0, End: 20}}, 20, "[0,20)", 20, phaseFetching, false, false},
		{"misaligned ranges cut to whole chunks", []byterange.Range{{Start: 5, End: 27}}, 0, "[10,20)", 0, phaseFetching, false, false},
		{"short last chunk kept", []byterange.Range{{Start: 30, End: 35}}, 0, "[30,35)", 0, phaseFetching, false, false},
		{"hash cursor past the prefix is dropped", []byterange.Range{{Start: 0, End: 10}}, 20, "[0,10)", 0, phaseFetching, true, false},
		{"out of bounds ranges dropped", []byterange.Range{{Start: -10, End: 5}, {Start: 30, End: 50}}, 0, "", 0, phaseFetching, false, false},
		{"whole blob hashed: the verdict is next (after a failed commit)", []byterange.Range{{Start: 0, End: 35}}, 35, "[0,35)", 35, phaseVerifying, true, true},
		{"whole blob unhashed: hash it all", []byterange.Range{{Start: 0, End: 35}}, 0, "[0,35)", 0, phaseVerifying, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, a := newTestMachine(tt.present, tt.hashedTo)
			if m.present.String() != tt.wantPresent || m.hashedTo != tt.wantHashedTo || m.phase != tt.wantPhase {
				t.Errorf("present %q hashedTo %d phase %s", m.present.String(), m.hashedTo, m.phase)
			}
			if a.hash != tt.wantHash || a.hashFinal != tt.wantFinal || (a.hash && (a.hashFrom != m.hashedTo || a.hashTo != m.present.PrefixEnd())) {
				t.Errorf("actions %+v", a)
			}
			if m.presentBytes != m.present.Size() {
				t.Errorf("presentBytes %d, set holds %d", m.presentBytes, m.present.Size())
			}
		})
	}
}

func TestBlobMachineEmptyBlobVerifiesAtOnce(t *testing.T) {
	m, a := newBlobMachine(0, 10, nil, 0, t0)
	if m.phase != phaseVerifying || !a.hash || !a.hashFinal || a.sync {
		t.Fatalf("%s %+v", m.phase, a)
	}
}

func TestBlobMachineMismatchStartsNewGeneration(t *testing.T) {
	m, _ := newTestMachine([]byterange.Range{{Start: 0, End: 35}}, 35)
	runMachine(t, m, []machineStep{
		{"mismatch of an old generation ignored", evMismatch(7, t0), nothing},
		{"mismatch", evMismatch(0, t0), func(t *testing.T, m *blobMachine, a blobActions, _ error) {
			if !a.replace || !a.wake || m.gen != 1 || m.phase != phaseFetching || m.present.Size() != 0 || m.presentBytes != 0 || m.hashedTo != 0 || m.hashing {
				t.Errorf("%+v", a)
			}
			if !errors.Is(m.lastErr, errdefs.ErrDigestMismatch) || !errors.Is(m.failFast(t0), errdefs.ErrDigestMismatch) {
				t.Errorf("lastErr %v failFast %v, want the mismatch in both", m.lastErr, m.failFast(t0))
			}
		}},
		{"the old generation's hasher reports: ignored", evHashed(0, 35), nothing},
		{"the old generation's verdict: ignored", evMatch(0), nothing},
		{"want within the backoff: fails fast", evWant(byterange.Range{Start: 0, End: 10}, testRead), wantErr(errdefs.ErrDigestMismatch)},
		{"fetch afresh after the backoff", evWantAt(byterange.Range{Start: 0, End: 10}, testRead, t0.Add(mismatchBackoff(1))), wantRuns([2]int64{0, 1})},
		{"an old run lands a chunk: ignored", evLand(0, 1, 0), nothing},
		{"the new run lands", evLand(1, 1, 0), wantHash(0, 10, false)},
	})
}

// TestBlobMachineRejectedDropsTheGeneration: bytes a layer format proved
// bad (a chunk or span digest) drop the generation like a mismatch, while
// fetching or verifying; a verified blob, or an old generation, ignores it.
func TestBlobMachineRejectedDropsTheGeneration(t *testing.T) {
	evReject := func(gen uint64, at time.Time) func(*blobMachine) (blobActions, error) {
		return func(m *blobMachine) (blobActions, error) { return m.rejected(gen, at), nil }
	}
	dropped := func(gen uint64) func(*testing.T, *blobMachine, blobActions, error) {
		return func(t *testing.T, m *blobMachine, a blobActions, _ error) {
			if !a.replace || !a.wake || m.gen != gen || m.phase != phaseFetching || m.presentBytes != 0 || len(m.flights) != 0 || m.hashing {
				t.Errorf("%+v gen %d, want a fresh generation %d", a, m.gen, gen)
			}
			if !errors.Is(m.failFast(t0), errdefs.ErrDigestMismatch) {
				t.Errorf("failFast %v, want the mismatch backoff", m.failFast(t0))
			}
		}
	}
	m, _ := newTestMachine(nil, 0)
	runMachine(t, m, []machineStep{
		{"fetch two chunks", evWant(byterange.Range{Start: 0, End: 20}, testRead), wantRuns([2]int64{0, 2})},
		{"one lands", evLand(0, 1, 0), wantHash(0, 10, false)},
		{"rejected while fetching", evReject(0, t0), dropped(1)},
		{"an old generation's rejection: ignored", evReject(0, t0), nothing},
		{"the old run lands: ignored", evLand(0, 1, 1), nothing},
		{"want within the backoff: fails fast", evWant(byterange.Range{Start: 0, End: 10}, testRead), wantErr(errdefs.ErrDigestMismatch)},
		{"fetch afresh after the backoff", evWantAt(byterange.Range{Start: 0, End: 10}, testRead, t0.Add(mismatchBackoff(1))), wantRuns([2]int64{0, 1})},
	})

	verifying, _ := newTestMachine([]byterange.Range{{Start: 0, End: 35}}, 35)
	runMachine(t, verifying, []machineStep{
		{"rejected while verifying", evReject(0, t0), dropped(1)},
	})
	if verifying.mismatches != 1 {
		t.Errorf("mismatches %d, want the rejection counted as one", verifying.mismatches)
	}

	done, _ := newTestMachine([]byterange.Range{{Start: 0, End: 35}}, 35)
	runMachine(t, done, []machineStep{
		{"verdict", evMatch(0), wantPhase(phaseCommitting)},
		{"rejected once verified: ignored", evReject(0, t0), nothing},
		{"still committing", evReject(0, t0), wantPhase(phaseCommitting)},
	})
}

func TestBlobMachineMismatchBacksOff(t *testing.T) {
	m, _ := newTestMachine([]byterange.Range{{Start: 0, End: 35}}, 35)
	now := t0
	for n := 1; n <= 8; n++ {
		if a := m.mismatched(m.gen, now); !a.replace {
			t.Fatalf("mismatch %d: %+v", n, a)
		}
		backoff := mismatchBackoff(n)
		if _, err := m.want(byterange.Range{Start: 0, End: 10}, testRead, false, now.Add(backoff-time.Millisecond)); !errors.Is(err, errdefs.ErrDigestMismatch) {
			t.Fatalf("mismatch %d: want within %s = %v, want a fast errdefs.ErrDigestMismatch", n, backoff, err)
		}
		now = now.Add(backoff)
		// Refill the new generation once the backoff is over.
		a, err := m.want(byterange.Range{Start: 0, End: 35}, fetchPlan{class: classBulk, runChunks: 4}, false, now)
		if err != nil || len(a.fetch) != 1 {
			t.Fatalf("mismatch %d: want after %s = %+v, %v", n, backoff, a, err)
		}
		for c := int64(0); c < 4; c++ {
			m.landed(m.gen, a.fetch[0].id, c, now)
		}
		m.hashed(m.gen, 35)
		if m.phase != phaseVerifying {
			t.Fatalf("refill %d: %s", n, m.phase)
		}
	}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 5: 16 * time.Second, 6: PermanentErrorWindow, 100: PermanentErrorWindow} {
		if got := mismatchBackoff(n); got != want {
			t.Errorf("mismatchBackoff(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestBlobMachineMatchResetsMismatchCount(t *testing.T) {
	m, _ := newTestMachine([]byterange.Range{{Start: 0, End: 35}}, 35)
	m.mismatched(0, t0)
	later := t0.Add(mismatchBackoff(1))
	a, err := m.want(byterange.Range{Start: 0, End: 35}, fetchPlan{class: classBulk, runChunks: 4}, false, later)
	if err != nil || len(a.fetch) != 1 {
		t.Fatalf("want after the backoff = %+v, %v", a, err)
	}
	for c := int64(0); c < 4; c++ {
		m.landed(1, a.fetch[0].id, c, later)
	}
	m.hashed(1, 35)
	if a := m.matched(1); !a.commit || m.mismatches != 0 {
		t.Fatalf("%+v mismatches %d", a, m.mismatches)
	}
}

func TestBlobMachineFetchFailure(t *testing.T) {
	transient := errors.New("connection reset")
	permanent := fmt.Errorf("%w: 404", errdefs.ErrPermanent)
	m, _ := newTestMachine(nil, 0)
	runMachine(t, m, []machineStep{
		{"want all", evWant(byterange.Range{Start: 0, End: 35}, testRead), wantRuns([2]int64{0, 2}, [2]int64{2, 4})},
		{"first chunk lands", evLand(0, 1, 0), wantHash(0, 10, false)},
		{"run 1 fails after one chunk", evFail(0, 1, transient, t0), func(t *testing.T, m *blobMachine, a blobActions, _ error) {
			if !a.wake || m.failures != 1 || m.lastErr != transient || m.failFast(t0) != nil {
				t.Errorf("%+v failures %d", a, m.failures)
			}
			if _, busy := m.flights[1]; busy || m.inClass[classRead] != 1 {
				t.Errorf("flights %v inClass %v", m.flights, m.inClass)
			}
		}},
		{"a failure of a finished or unknown run is ignored", evFail(0, 1, transient, t0), nothing},
		{"retry fetches only the chunk that did not land", evWant(byterange.Range{Start: 0, End: 35}, testRead), wantRuns([2]int64{1, 2})},
		{"permanent failure", evFail(0, 3, permanent, t0), func(t *testing.T, m *blobMachine, a blobActions, _ error) {
			if !errors.Is(m.failFast(t0.Add(time.Second)), errdefs.ErrPermanent) {
				t.Error("no failure window")
			}
		}},
		{"want of missing bytes in the window fails fast", evWant(byterange.Range{Start: 10, End: 20}, testRead), func(t *testing.T, m *blobMachine, a blobActions, err error) {
			if !errors.Is(err, errdefs.ErrPermanent) || len(a.fetch) != 0 {
				t.Errorf("%+v %v", a, err)
			}
		}},
		{"want of present bytes in the window is fine", evWant(byterange.Range{Start: 0, End: 10}, testRead), nothing},
		{"after the window, fetch again", func(m *blobMachine) (blobActions, error) {
			return m.want(byterange.Range{Start: 10, End: 35}, testRead, false, t0.Add(PermanentErrorWindow+time.Second))
		}, wantRuns([2]int64{1, 2})},
	})
}

func TestBlobMachineOffline(t *testing.T) {
	m, _ := newTestMachine([]byterange.Range{{Start: 0, End: 10}}, 0)
	if a, err := m.want(byterange.Range{Start: 0, End: 10}, testRead, true, t0); err != nil || len(a.fetch) != 0 {
		t.Fatalf("offline want of present bytes: %+v %v", a, err)
	}
	if _, err := m.want(byterange.Range{Start: 5, End: 15}, testRead, true, t0); !errors.Is(err, errdefs.ErrOffline) {
		t.Fatalf("offline want of missing bytes = %v", err)
	}
	if len(m.flights) != 0 {
		t.Fatalf("offline want left flights %v", m.flights)
	}
}

func TestBlobMachineBulkIsBounded(t *testing.T) {
	// A claimed 15 TiB costs at most maxRuns runs, however large the want.
	m, _ := newBlobMachine(15<<40, 1<<20, nil, 0, t0)
	a, err := m.want(byterange.Range{Start: 0, End: 15 << 40}, testBulk, false, t0)
	if err != nil || len(a.fetch) != testBulk.maxRuns || len(m.flights) != testBulk.maxRuns*int(testBulk.runChunks) {
		t.Fatalf("%d runs, %d flights, %v", len(a.fetch), len(m.flights), err)
	}
	if a, _ := m.want(byterange.Range{Start: 0, End: 15 << 40}, testBulk, false, t0); len(a.fetch) != 0 {
		t.Fatalf("bound exceeded: %d more runs", len(a.fetch))
	}
	// A landed run frees a slot, and the next run starts after the busy ones.
	m.landed(0, 1, 0, t0)
	m.landed(0, 1, 1, t0)
	a, _ = m.want(byterange.Range{Start: 0, End: 15 << 40}, testBulk, false, t0)
	if len(a.fetch) != 1 || a.fetch[0].c0 != 4 {
		t.Fatalf("next run %+v", a.fetch)
	}
	// Reads are not held back by bulk runs.
	if a, _ := m.want(byterange.Range{Start: 100 << 20, End: 100<<20 + 1}, testRead, false, t0); len(a.fetch) != 1 {
		t.Fatalf("read blocked by bulk: %+v", a)
	}
}

func TestBlobMachineCommitFailureIsRetryable(t *testing.T) {
	m, _ := newTestMachine([]byterange.Range{{Start: 0, End: 35}}, 35)
	m.matched(0)
	a := m.commitFailed(errors.New("ENOSPC"))
	if !a.wake || !a.save || m.phase != phaseCommitFailed || m.commitErr == nil {
		t.Fatalf("commit failure: %+v %s", a, m.phase)
	}
	if !m.verified() {
		t.Fatal("a failed commit forgot the verdict: readers would wait forever")
	}
	if a := m.commitFailed(errors.New("again")); !reflect.DeepEqual(a, blobActions{}) {
		t.Fatalf("second failure without a retry: %+v", a)
	}
	if a := m.retryCommit(); !a.commit || m.phase != phaseCommitting {
		t.Fatalf("retry: %+v %s", a, m.phase)
	}
	if a := m.committed(); !a.wake || m.phase != phaseComplete || m.commitErr != nil {
		t.Fatalf("committed: %+v", a)
	}
	if a := m.retryCommit(); !reflect.DeepEqual(a, blobActions{}) {
		t.Fatalf("retry after complete: %+v", a)
	}
}

func TestBlobMachineAdoptsCommittedBlob(t *testing.T) {
	m, _ := newTestMachine(nil, 0)
	m.want(byterange.Range{Start: 0, End: 35}, testRead, false, t0)
	if a := m.adopted(); !a.wake || m.phase != phaseComplete {
		t.Fatalf("%+v %s", a, m.phase)
	}
	if a := m.landed(0, 1, 0, t0); a.hash {
		t.Fatal("hashing after adopting a complete blob")
	}
	if a := m.adopted(); a.wake {
		t.Fatal("second adoption woke waiters")
	}
}

func TestBlobMachineHashStoppedRestarts(t *testing.T) {
	m, _ := newTestMachine([]byterange.Range{{Start: 0, End: 20}}, 0)
	if !m.hashing {
		t.Fatal("resumed prefix not hashing")
	}
	readErr := errors.New("EIO")
	if a := m.hashStopped(0, readErr); !a.wake || m.lastErr != readErr || m.failures != 1 {
		t.Fatalf("hash failure not reported to waiters: %+v", a)
	}
	a, _ := m.want(byterange.Range{Start: 20, End: 30}, testRead, false, t0)
	if !a.hash || a.hashFrom != 0 || a.hashTo != 20 {
		t.Fatalf("want did not restart hashing: %+v", a)
	}
	if a := m.landed(0, a.fetch[0].id, 2, t0); a.hash {
		t.Fatalf("second hasher: %+v", a)
	}
	if a := m.hashed(0, 20); !a.hash || a.hashFrom != 20 || a.hashTo != 30 {
		t.Fatalf("hasher not continued: %+v", a)
	}
}

func TestBlobMachineSavesPeriodically(t *testing.T) {
	m, _ := newBlobMachine(1<<30, 1<<20, nil, 0, t0)
	a, _ := m.want(byterange.Range{Start: 0, End: 1 << 30}, fetchPlan{class: classBulk, runChunks: 128}, false, t0)
	saves := 0
	for _, run := range a.fetch {
		for c := run.c0; c < run.c1; c++ {
			if m.landed(0, run.id, c, t0).save {
				saves++
			}
		}
	}
	// Only the first: saves are paced by time, so a fast fetch is not
	// pushed to disk at every few MiB while a reader streams it.
	if saves != 1 {
		t.Fatalf("%d saves for 1 GiB landed at once, want 1", saves)
	}
	m2, _ := newBlobMachine(100, 10, nil, 0, t0)
	a, _ = m2.want(byterange.Range{Start: 0, End: 100}, fetchPlan{class: classBulk, runChunks: 10}, false, t0)
	if !m2.landed(0, a.fetch[0].id, 0, t0).save {
		t.Fatal("the first chunk to land was not saved at once")
	}
	if m2.landed(0, a.fetch[0].id, 1, t0).save {
		t.Fatal("saved again after a few bytes and no time")
	}
	if !m2.landed(0, a.fetch[0].id, 2, t0.Add(saveEvery)).save {
		t.Fatal("not saved after saveEvery")
	}
}

func TestBlobMachineClaimTakesOnlyWhatNoOneHas(t *testing.T) {
	// Chunk 0 present, run A fetching chunk 2, run B fetching chunk 3.
	m, _ := newTestMachine([]byterange.Range{{Start: 0, End: 10}}, 0)
	a, _ := m.want(byterange.Range{Start: 20, End: 30}, testRead, false, t0)
	runA := a.fetch[0]
	if b, _ := m.want(byterange.Range{Start: 30, End: 35}, testRead, false, t0); len(b.fetch) != 1 {
		t.Fatalf("run B: %+v", b)
	}
	for _, tt := range []struct {
		name string
		c    int64
		want bool
	}{
		{"a present chunk is never written over", 0, false},
		{"a chunk no one has is taken on", 1, true},
		{"taking it again is still the run's", 1, true},
		{"the run's own chunk", 2, true},
		{"another run's chunk", 3, false},
		{"past the end", 4, false},
		{"before the start", -1, false},
	} {
		if got := m.claim(runA.gen, runA.id, tt.c); got != tt.want {
			t.Errorf("%s: claim(%d) = %v, want %v", tt.name, tt.c, got, tt.want)
		}
	}
	if left := m.runLeft(runA.id); left != 2 {
		t.Errorf("run A has %d chunks left, want 2 (its own and the one it took on)", left)
	}
	if m.claim(runA.gen+1, runA.id, 1) {
		t.Error("a claim of another generation succeeded")
	}
	// The claimed chunk lands through the run like its own.
	m.landed(runA.gen, runA.id, 1, t0)
	m.landed(runA.gen, runA.id, 2, t0)
	if m.runLeft(runA.id) != 0 || !m.present.Contains(byterange.Range{Start: 10, End: 30}) {
		t.Fatalf("after landing: %d left, present %s", m.runLeft(runA.id), m.present.String())
	}
	// A run that fails frees every chunk it took on, so others may fetch them.
	m2, _ := newTestMachine(nil, 0)
	w, _ := m2.want(byterange.Range{Start: 0, End: 10}, testRead, false, t0)
	run := w.fetch[0]
	m2.claim(run.gen, run.id, 3)
	m2.fetchFailed(run.gen, run.id, errors.New("reset"), t0)
	if len(m2.flights) != 0 {
		t.Fatalf("flights left after the run failed: %v", m2.flights)
	}
}

func TestBlobMachineHandOver(t *testing.T) {
	m, _ := newBlobMachine(100, 10, nil, 0, t0)
	lead, _ := m.want(byterange.Range{Start: 0, End: 20}, testRead, false, t0)
	late, _ := m.want(byterange.Range{Start: 50, End: 70}, testRead, false, t0)
	l, r := lead.fetch[0], late.fetch[0]
	if !m.handOver(r.gen, r.id, l.id, 4) {
		t.Fatal("hand-over of chunks ahead of the lead refused")
	}
	if m.runLeft(r.id) != 0 || m.runLeft(l.id) != 4 || m.flights[5] != l.id || m.flights[6] != l.id {
		t.Fatalf("after hand-over: late %d left, lead %d left, flights %v", m.runLeft(r.id), m.runLeft(l.id), m.flights)
	}
	if m.failures != 0 {
		t.Fatal("a hand-over counted as a failure")
	}
	// A run keeps the chunks the lead has passed, and hands over the rest.
	other, _ := m.want(byterange.Range{Start: 20, End: 40}, testRead, false, t0)
	o := other.fetch[0]
	if m.handOver(o.gen, o.id, l.id, 2) {
		t.Fatal("the run ended though the lead has passed its chunk 2")
	}
	if !m.owns(o.gen, o.id, 2) || m.owns(o.gen, o.id, 3) || !m.owns(l.gen, l.id, 3) || m.runLeft(o.id) != 1 {
		t.Fatalf("after a partial hand-over: flights %v, run left %d", m.flights, m.runLeft(o.id))
	}
	if m.handOver(o.gen+1, o.id, l.id, 0) || m.handOver(o.gen, o.id, o.id, 0) {
		t.Fatal("hand-over across generations or to itself")
	}
}

func TestBlobMachineAdoptionSetsUnverifiedBytesAside(t *testing.T) {
	m, _ := newTestMachine([]byterange.Range{{Start: 0, End: 20}}, 0)
	epoch := m.epoch
	a := m.adopted()
	if !a.setAside || !a.wake || m.epoch != epoch+1 || m.phase != phaseComplete {
		t.Errorf("adopted over unverified bytes: %+v epoch %d→%d phase %s; want set aside in a new epoch", a, epoch, m.epoch, m.phase)
	}
	fresh, _ := newTestMachine(nil, 0)
	if a := fresh.adopted(); a.setAside || fresh.epoch != 0 {
		t.Errorf("adopted with nothing present: %+v epoch %d; nothing to set aside", a, fresh.epoch)
	}
	m, _ = newTestMachine(nil, 0)
	m.dropGeneration(t0)
	if m.epoch != 1 {
		t.Errorf("a dropped generation starts epoch %d, want 1", m.epoch)
	}
}
