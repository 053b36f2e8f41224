package blobfsm

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
	testRead = Plan{Class: ClassRead, RunChunks: 2}
	testBulk = Plan{Class: ClassBulk, RunChunks: 2, MaxRuns: 2}
)

type machineStep struct {
	name  string
	event func(m *Machine) (Actions, error)
	check func(t *testing.T, m *Machine, a Actions, err error)
}

func runMachine(t *testing.T, m *Machine, steps []machineStep) {
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
func evWant(r byterange.Range, plan Plan) func(*Machine) (Actions, error) {
	return func(m *Machine) (Actions, error) { return m.Want(r, plan, false, t0) }
}

func evWantAt(r byterange.Range, plan Plan, now time.Time) func(*Machine) (Actions, error) {
	return func(m *Machine) (Actions, error) { return m.Want(r, plan, false, now) }
}

func evLand(gen, id uint64, c int64) func(*Machine) (Actions, error) {
	return func(m *Machine) (Actions, error) { return m.Landed(gen, id, c, t0), nil }
}

func evFail(gen, id uint64, err error, at time.Time) func(*Machine) (Actions, error) {
	return func(m *Machine) (Actions, error) { return m.FetchFailed(gen, id, err, at), nil }
}

func evHashed(gen uint64, to int64) func(*Machine) (Actions, error) {
	return func(m *Machine) (Actions, error) { return m.Hashed(gen, to), nil }
}

func evMatch(gen uint64) func(*Machine) (Actions, error) {
	return func(m *Machine) (Actions, error) { return m.Matched(gen), nil }
}

func evMismatch(gen uint64, at time.Time) func(*Machine) (Actions, error) {
	return func(m *Machine) (Actions, error) { return m.Mismatched(gen, at), nil }
}

// Check helpers.
func wantRuns(runs ...[2]int64) func(*testing.T, *Machine, Actions, error) {
	return func(t *testing.T, m *Machine, a Actions, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("error %v", err)
		}
		var got [][2]int64
		for _, r := range a.Fetch {
			got = append(got, [2]int64{r.C0, r.C1})
		}
		if !reflect.DeepEqual(got, runs) {
			t.Errorf("runs %v, want %v", got, runs)
		}
	}
}

func wantErr(want error) func(*testing.T, *Machine, Actions, error) {
	return func(t *testing.T, m *Machine, a Actions, err error) {
		t.Helper()
		if !errors.Is(err, want) || len(a.Fetch) != 0 {
			t.Errorf("error %v with runs %v, want %v and no runs", err, a.Fetch, want)
		}
	}
}

func wantHash(from, to int64, final bool) func(*testing.T, *Machine, Actions, error) {
	return func(t *testing.T, m *Machine, a Actions, err error) {
		t.Helper()
		if !a.Hash || a.HashFrom != from || a.HashTo != to || a.HashFinal != final {
			t.Errorf("hash action %v [%d,%d) final %v, want [%d,%d) final %v", a.Hash, a.HashFrom, a.HashTo, a.HashFinal, from, to, final)
		}
	}
}

func wantPhase(p Phase) func(*testing.T, *Machine, Actions, error) {
	return func(t *testing.T, m *Machine, a Actions, err error) {
		t.Helper()
		if m.phase != p {
			t.Errorf("phase %s, want %s", m.phase, p)
		}
	}
}

func all(checks ...func(*testing.T, *Machine, Actions, error)) func(*testing.T, *Machine, Actions, error) {
	return func(t *testing.T, m *Machine, a Actions, err error) {
		t.Helper()
		for _, c := range checks {
			c(t, m, a, err)
		}
	}
}

func nothing(t *testing.T, m *Machine, a Actions, err error) {
	t.Helper()
	if !reflect.DeepEqual(a, Actions{}) || err != nil {
		t.Errorf("actions %+v, error %v; want none", a, err)
	}
}

// A blob of 4 chunks of 10 bytes, the last one short: 35 bytes.
func newTestMachine(present []byterange.Range, hashedTo int64) (*Machine, Actions) {
	return New(35, 10, present, hashedTo, t0)
}

func TestBlobMachineHappyPath(t *testing.T) {
	m, a := newTestMachine(nil, 0)
	if !reflect.DeepEqual(a, Actions{}) || m.phase != PhaseFetching {
		t.Fatalf("fresh machine: %+v %s", a, m.phase)
	}
	runMachine(t, m, []machineStep{
		{"want a mid-chunk read", evWant(byterange.Range{Start: 12, End: 14}, testRead), wantRuns([2]int64{1, 2})},
		{"want it again: in flight, nothing new", evWant(byterange.Range{Start: 12, End: 14}, testRead), nothing},
		{"want all: runs of two skip the busy chunk", evWant(byterange.Range{Start: 0, End: 35}, testRead), wantRuns([2]int64{0, 1}, [2]int64{2, 4})},
		{"chunk 1 lands: no prefix yet", evLand(0, 1, 1), func(t *testing.T, m *Machine, a Actions, _ error) {
			if a.Hash || !a.Wake || !m.present.Contains(byterange.Range{Start: 10, End: 20}) {
				t.Errorf("%+v", a)
			}
		}},
		{"chunk 0 lands: hash the prefix", evLand(0, 2, 0), wantHash(0, 20, false)},
		{"chunk 3 lands while hashing: no second hasher", evLand(0, 3, 3), func(t *testing.T, m *Machine, a Actions, _ error) {
			if a.Hash {
				t.Error("second hash action while one is outstanding")
			}
		}},
		{"hashed to 20: nothing more to hash", evHashed(0, 20), func(t *testing.T, m *Machine, a Actions, _ error) {
			if a.Hash || m.hashing || m.hashedTo != 20 {
				t.Errorf("%+v hashing %v to %d", a, m.hashing, m.hashedTo)
			}
		}},
		{"last chunk lands: verifying, sync, final hash", evLand(0, 3, 2), all(wantPhase(PhaseVerifying), wantHash(20, 35, true), func(t *testing.T, m *Machine, a Actions, _ error) {
			if !a.Sync {
				t.Error("no early sync")
			}
		})},
		{"want when all present: nothing", evWant(byterange.Range{Start: 0, End: 35}, testBulk), nothing},
		{"hashed to the end: still waiting for verdict", evHashed(0, 35), wantPhase(PhaseVerifying)},
		{"match: commit", evMatch(0), func(t *testing.T, m *Machine, a Actions, _ error) {
			if !a.Commit || !m.Verified() || m.phase != PhaseCommitting {
				t.Errorf("%+v %s", a, m.phase)
			}
		}},
		{"committed", func(m *Machine) (Actions, error) { return m.Committed(), nil }, wantPhase(PhaseComplete)},
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
		wantPhase    Phase
		wantHash     bool
		wantFinal    bool
	}{
		{"empty", nil, 0, "", 0, PhaseFetching, false, false},
		{"prefix not hashed: hash it", []byterange.Range{{Start: 0, End: 20}}, 0, "[0,20)", 0, PhaseFetching, true, false},
		{"prefix hashed: nothing to do", []byterange.Range{{Start: 0, End: 20}}, 20, "[0,20)", 20, PhaseFetching, false, false},
		{"sub-chunk ranges kept as saved", []byterange.Range{{Start: 5, End: 27}}, 0, "[5,27)", 0, PhaseFetching, false, false},
		{"a sub-chunk prefix is hashed", []byterange.Range{{Start: 0, End: 7}}, 0, "[0,7)", 0, PhaseFetching, true, false},
		{"short last chunk kept", []byterange.Range{{Start: 30, End: 35}}, 0, "[30,35)", 0, PhaseFetching, false, false},
		{"hash cursor past the prefix is dropped", []byterange.Range{{Start: 0, End: 10}}, 20, "[0,10)", 0, PhaseFetching, true, false},
		{"out of bounds ranges dropped", []byterange.Range{{Start: -10, End: 5}, {Start: 30, End: 50}}, 0, "", 0, PhaseFetching, false, false},
		{"whole blob hashed: the verdict is next (after a failed commit)", []byterange.Range{{Start: 0, End: 35}}, 35, "[0,35)", 35, PhaseVerifying, true, true},
		{"whole blob unhashed: hash it all", []byterange.Range{{Start: 0, End: 35}}, 0, "[0,35)", 0, PhaseVerifying, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, a := newTestMachine(tt.present, tt.hashedTo)
			if m.present.String() != tt.wantPresent || m.hashedTo != tt.wantHashedTo || m.phase != tt.wantPhase {
				t.Errorf("present %q hashedTo %d phase %s", m.present.String(), m.hashedTo, m.phase)
			}
			if a.Hash != tt.wantHash || a.HashFinal != tt.wantFinal || (a.Hash && (a.HashFrom != m.hashedTo || a.HashTo != m.present.PrefixEnd())) {
				t.Errorf("actions %+v", a)
			}
			if m.presentBytes != m.present.Size() {
				t.Errorf("presentBytes %d, set holds %d", m.presentBytes, m.present.Size())
			}
		})
	}
}

func TestBlobMachineEmptyBlobVerifiesAtOnce(t *testing.T) {
	m, a := New(0, 10, nil, 0, t0)
	if m.phase != PhaseVerifying || !a.Hash || !a.HashFinal || a.Sync {
		t.Fatalf("%s %+v", m.phase, a)
	}
}

func TestBlobMachineMismatchStartsNewGeneration(t *testing.T) {
	m, _ := newTestMachine([]byterange.Range{{Start: 0, End: 35}}, 35)
	runMachine(t, m, []machineStep{
		{"mismatch of an old generation ignored", evMismatch(7, t0), nothing},
		{"mismatch", evMismatch(0, t0), func(t *testing.T, m *Machine, a Actions, _ error) {
			if !a.Replace || !a.Wake || m.gen != 1 || m.phase != PhaseFetching || m.present.Size() != 0 || m.presentBytes != 0 || m.hashedTo != 0 || m.hashing {
				t.Errorf("%+v", a)
			}
			if !errors.Is(m.lastErr, errdefs.ErrDigestMismatch) || !errors.Is(m.FailFast(t0), errdefs.ErrDigestMismatch) {
				t.Errorf("lastErr %v failFast %v, want the mismatch in both", m.lastErr, m.FailFast(t0))
			}
		}},
		{"the old generation's hasher reports: ignored", evHashed(0, 35), nothing},
		{"the old generation's verdict: ignored", evMatch(0), nothing},
		{"want within the backoff: fails fast", evWant(byterange.Range{Start: 0, End: 10}, testRead), wantErr(errdefs.ErrDigestMismatch)},
		{"fetch afresh after the backoff", evWantAt(byterange.Range{Start: 0, End: 10}, testRead, t0.Add(MismatchBackoff(1))), wantRuns([2]int64{0, 1})},
		{"an old run lands a chunk: ignored", evLand(0, 1, 0), nothing},
		{"the new run lands", evLand(1, 1, 0), wantHash(0, 10, false)},
	})
}

// TestBlobMachineRejectedDropsTheGeneration: bytes a layer format proved
// bad (a chunk or span digest) drop the generation like a mismatch, while
// fetching or verifying; a verified blob, or an old generation, ignores it.
func TestBlobMachineRejectedDropsTheGeneration(t *testing.T) {
	evReject := func(gen uint64, at time.Time) func(*Machine) (Actions, error) {
		return func(m *Machine) (Actions, error) { return m.Rejected(gen, at), nil }
	}
	dropped := func(gen uint64) func(*testing.T, *Machine, Actions, error) {
		return func(t *testing.T, m *Machine, a Actions, _ error) {
			if !a.Replace || !a.Wake || m.gen != gen || m.phase != PhaseFetching || m.presentBytes != 0 || len(m.flights) != 0 || m.hashing {
				t.Errorf("%+v gen %d, want a fresh generation %d", a, m.gen, gen)
			}
			if !errors.Is(m.FailFast(t0), errdefs.ErrDigestMismatch) {
				t.Errorf("failFast %v, want the mismatch backoff", m.FailFast(t0))
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
		{"fetch afresh after the backoff", evWantAt(byterange.Range{Start: 0, End: 10}, testRead, t0.Add(MismatchBackoff(1))), wantRuns([2]int64{0, 1})},
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
		{"verdict", evMatch(0), wantPhase(PhaseCommitting)},
		{"rejected once verified: ignored", evReject(0, t0), nothing},
		{"still committing", evReject(0, t0), wantPhase(PhaseCommitting)},
	})
}

func TestBlobMachineMismatchBacksOff(t *testing.T) {
	m, _ := newTestMachine([]byterange.Range{{Start: 0, End: 35}}, 35)
	now := t0
	for n := 1; n <= 8; n++ {
		if a := m.Mismatched(m.gen, now); !a.Replace {
			t.Fatalf("mismatch %d: %+v", n, a)
		}
		backoff := MismatchBackoff(n)
		if _, err := m.Want(byterange.Range{Start: 0, End: 10}, testRead, false, now.Add(backoff-time.Millisecond)); !errors.Is(err, errdefs.ErrDigestMismatch) {
			t.Fatalf("mismatch %d: want within %s = %v, want a fast errdefs.ErrDigestMismatch", n, backoff, err)
		}
		now = now.Add(backoff)
		// Refill the new generation once the backoff is over.
		a, err := m.Want(byterange.Range{Start: 0, End: 35}, Plan{Class: ClassBulk, RunChunks: 4}, false, now)
		if err != nil || len(a.Fetch) != 1 {
			t.Fatalf("mismatch %d: want after %s = %+v, %v", n, backoff, a, err)
		}
		for c := int64(0); c < 4; c++ {
			m.Landed(m.gen, a.Fetch[0].ID, c, now)
		}
		m.Hashed(m.gen, 35)
		if m.phase != PhaseVerifying {
			t.Fatalf("refill %d: %s", n, m.phase)
		}
	}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 5: 16 * time.Second, 6: PermanentErrorWindow, 100: PermanentErrorWindow} {
		if got := MismatchBackoff(n); got != want {
			t.Errorf("MismatchBackoff(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestBlobMachineMatchResetsMismatchCount(t *testing.T) {
	m, _ := newTestMachine([]byterange.Range{{Start: 0, End: 35}}, 35)
	m.Mismatched(0, t0)
	later := t0.Add(MismatchBackoff(1))
	a, err := m.Want(byterange.Range{Start: 0, End: 35}, Plan{Class: ClassBulk, RunChunks: 4}, false, later)
	if err != nil || len(a.Fetch) != 1 {
		t.Fatalf("want after the backoff = %+v, %v", a, err)
	}
	for c := int64(0); c < 4; c++ {
		m.Landed(1, a.Fetch[0].ID, c, later)
	}
	m.Hashed(1, 35)
	if a := m.Matched(1); !a.Commit || m.mismatches != 0 {
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
		{"run 1 fails after one chunk", evFail(0, 1, transient, t0), func(t *testing.T, m *Machine, a Actions, _ error) {
			if !a.Wake || m.failures != 1 || m.lastErr != transient || m.FailFast(t0) != nil {
				t.Errorf("%+v failures %d", a, m.failures)
			}
			if _, busy := m.flights[1]; busy || m.inClass[ClassRead] != 1 {
				t.Errorf("flights %v inClass %v", m.flights, m.inClass)
			}
		}},
		{"a failure of a finished or unknown run is ignored", evFail(0, 1, transient, t0), nothing},
		{"retry fetches only the chunk that did not land", evWant(byterange.Range{Start: 0, End: 35}, testRead), wantRuns([2]int64{1, 2})},
		{"permanent failure", evFail(0, 3, permanent, t0), func(t *testing.T, m *Machine, a Actions, _ error) {
			if !errors.Is(m.FailFast(t0.Add(time.Second)), errdefs.ErrPermanent) {
				t.Error("no failure window")
			}
		}},
		{"want of missing bytes in the window fails fast", evWant(byterange.Range{Start: 10, End: 20}, testRead), func(t *testing.T, m *Machine, a Actions, err error) {
			if !errors.Is(err, errdefs.ErrPermanent) || len(a.Fetch) != 0 {
				t.Errorf("%+v %v", a, err)
			}
		}},
		{"want of present bytes in the window is fine", evWant(byterange.Range{Start: 0, End: 10}, testRead), nothing},
		{"after the window, fetch again", func(m *Machine) (Actions, error) {
			return m.Want(byterange.Range{Start: 10, End: 35}, testRead, false, t0.Add(PermanentErrorWindow+time.Second))
		}, wantRuns([2]int64{1, 2})},
	})
}

func TestBlobMachineOffline(t *testing.T) {
	m, _ := newTestMachine([]byterange.Range{{Start: 0, End: 10}}, 0)
	if a, err := m.Want(byterange.Range{Start: 0, End: 10}, testRead, true, t0); err != nil || len(a.Fetch) != 0 {
		t.Fatalf("offline want of present bytes: %+v %v", a, err)
	}
	if _, err := m.Want(byterange.Range{Start: 5, End: 15}, testRead, true, t0); !errors.Is(err, errdefs.ErrOffline) {
		t.Fatalf("offline want of missing bytes = %v", err)
	}
	if len(m.flights) != 0 {
		t.Fatalf("offline want left flights %v", m.flights)
	}
}

func TestBlobMachineBulkIsBounded(t *testing.T) {
	// A claimed 15 TiB costs at most maxRuns runs, however large the want.
	m, _ := New(15<<40, 1<<20, nil, 0, t0)
	a, err := m.Want(byterange.Range{Start: 0, End: 15 << 40}, testBulk, false, t0)
	if err != nil || len(a.Fetch) != testBulk.MaxRuns || len(m.flights) != testBulk.MaxRuns*int(testBulk.RunChunks) {
		t.Fatalf("%d runs, %d flights, %v", len(a.Fetch), len(m.flights), err)
	}
	if a, _ := m.Want(byterange.Range{Start: 0, End: 15 << 40}, testBulk, false, t0); len(a.Fetch) != 0 {
		t.Fatalf("bound exceeded: %d more runs", len(a.Fetch))
	}
	// A landed run frees a slot, and the next run starts after the busy ones.
	m.Landed(0, 1, 0, t0)
	m.Landed(0, 1, 1, t0)
	a, _ = m.Want(byterange.Range{Start: 0, End: 15 << 40}, testBulk, false, t0)
	if len(a.Fetch) != 1 || a.Fetch[0].C0 != 4 {
		t.Fatalf("next run %+v", a.Fetch)
	}
	// Reads are not held back by bulk runs.
	if a, _ := m.Want(byterange.Range{Start: 100 << 20, End: 100<<20 + 1}, testRead, false, t0); len(a.Fetch) != 1 {
		t.Fatalf("read blocked by bulk: %+v", a)
	}
}

func TestBlobMachineCommitFailureIsRetryable(t *testing.T) {
	m, _ := newTestMachine([]byterange.Range{{Start: 0, End: 35}}, 35)
	m.Matched(0)
	a := m.CommitFailed(errors.New("ENOSPC"))
	if !a.Wake || !a.Save || m.phase != PhaseCommitFailed || m.commitErr == nil {
		t.Fatalf("commit failure: %+v %s", a, m.phase)
	}
	if !m.Verified() {
		t.Fatal("a failed commit forgot the verdict: readers would wait forever")
	}
	if a := m.CommitFailed(errors.New("again")); !reflect.DeepEqual(a, Actions{}) {
		t.Fatalf("second failure without a retry: %+v", a)
	}
	if a := m.RetryCommit(); !a.Commit || m.phase != PhaseCommitting {
		t.Fatalf("retry: %+v %s", a, m.phase)
	}
	if a := m.Committed(); !a.Wake || m.phase != PhaseComplete || m.commitErr != nil {
		t.Fatalf("committed: %+v", a)
	}
	if a := m.RetryCommit(); !reflect.DeepEqual(a, Actions{}) {
		t.Fatalf("retry after complete: %+v", a)
	}
}

func TestBlobMachineAdoptsCommittedBlob(t *testing.T) {
	m, _ := newTestMachine(nil, 0)
	m.Want(byterange.Range{Start: 0, End: 35}, testRead, false, t0)
	if a := m.Adopted(); !a.Wake || m.phase != PhaseComplete {
		t.Fatalf("%+v %s", a, m.phase)
	}
	if a := m.Landed(0, 1, 0, t0); a.Hash {
		t.Fatal("hashing after adopting a complete blob")
	}
	if a := m.Adopted(); a.Wake {
		t.Fatal("second adoption woke waiters")
	}
}

func TestBlobMachineHashStoppedRestarts(t *testing.T) {
	m, _ := newTestMachine([]byterange.Range{{Start: 0, End: 20}}, 0)
	if !m.hashing {
		t.Fatal("resumed prefix not hashing")
	}
	readErr := errors.New("EIO")
	if a := m.HashStopped(0, readErr); !a.Wake || m.lastErr != readErr || m.failures != 1 {
		t.Fatalf("hash failure not reported to waiters: %+v", a)
	}
	a, _ := m.Want(byterange.Range{Start: 20, End: 30}, testRead, false, t0)
	if !a.Hash || a.HashFrom != 0 || a.HashTo != 20 {
		t.Fatalf("want did not restart hashing: %+v", a)
	}
	if a := m.Landed(0, a.Fetch[0].ID, 2, t0); a.Hash {
		t.Fatalf("second hasher: %+v", a)
	}
	if a := m.Hashed(0, 20); !a.Hash || a.HashFrom != 20 || a.HashTo != 30 {
		t.Fatalf("hasher not continued: %+v", a)
	}
}

func TestBlobMachineSavesPeriodically(t *testing.T) {
	m, _ := New(1<<30, 1<<20, nil, 0, t0)
	a, _ := m.Want(byterange.Range{Start: 0, End: 1 << 30}, Plan{Class: ClassBulk, RunChunks: 128}, false, t0)
	saves := 0
	for _, run := range a.Fetch {
		for c := run.C0; c < run.C1; c++ {
			if m.Landed(0, run.ID, c, t0).Save {
				saves++
			}
		}
	}
	// Only the first: saves are paced by time, so a fast fetch is not
	// pushed to disk at every few MiB while a reader streams it.
	if saves != 1 {
		t.Fatalf("%d saves for 1 GiB landed at once, want 1", saves)
	}
	m2, _ := New(100, 10, nil, 0, t0)
	a, _ = m2.Want(byterange.Range{Start: 0, End: 100}, Plan{Class: ClassBulk, RunChunks: 10}, false, t0)
	if !m2.Landed(0, a.Fetch[0].ID, 0, t0).Save {
		t.Fatal("the first chunk to land was not saved at once")
	}
	if m2.Landed(0, a.Fetch[0].ID, 1, t0).Save {
		t.Fatal("saved again after a few bytes and no time")
	}
	if !m2.Landed(0, a.Fetch[0].ID, 2, t0.Add(saveEvery)).Save {
		t.Fatal("not saved after saveEvery")
	}
}

func TestBlobMachineClaimTakesOnlyWhatNoOneHas(t *testing.T) {
	// Chunk 0 present, run A fetching chunk 2, run B fetching chunk 3.
	m, _ := newTestMachine([]byterange.Range{{Start: 0, End: 10}}, 0)
	a, _ := m.Want(byterange.Range{Start: 20, End: 30}, testRead, false, t0)
	runA := a.Fetch[0]
	if b, _ := m.Want(byterange.Range{Start: 30, End: 35}, testRead, false, t0); len(b.Fetch) != 1 {
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
		if got := m.Claim(runA.Gen, runA.ID, tt.c); got != tt.want {
			t.Errorf("%s: claim(%d) = %v, want %v", tt.name, tt.c, got, tt.want)
		}
	}
	if left := m.RunLeft(runA.ID); left != 2 {
		t.Errorf("run A has %d chunks left, want 2 (its own and the one it took on)", left)
	}
	if m.Claim(runA.Gen+1, runA.ID, 1) {
		t.Error("a claim of another generation succeeded")
	}
	// The claimed chunk lands through the run like its own.
	m.Landed(runA.Gen, runA.ID, 1, t0)
	m.Landed(runA.Gen, runA.ID, 2, t0)
	if m.RunLeft(runA.ID) != 0 || !m.present.Contains(byterange.Range{Start: 10, End: 30}) {
		t.Fatalf("after landing: %d left, present %s", m.RunLeft(runA.ID), m.present.String())
	}
	// A run that fails frees every chunk it took on, so others may fetch them.
	m2, _ := newTestMachine(nil, 0)
	w, _ := m2.Want(byterange.Range{Start: 0, End: 10}, testRead, false, t0)
	run := w.Fetch[0]
	m2.Claim(run.Gen, run.ID, 3)
	m2.FetchFailed(run.Gen, run.ID, errors.New("reset"), t0)
	if len(m2.flights) != 0 {
		t.Fatalf("flights left after the run failed: %v", m2.flights)
	}
}

func TestBlobMachineHandOver(t *testing.T) {
	m, _ := New(100, 10, nil, 0, t0)
	lead, _ := m.Want(byterange.Range{Start: 0, End: 20}, testRead, false, t0)
	late, _ := m.Want(byterange.Range{Start: 50, End: 70}, testRead, false, t0)
	l, r := lead.Fetch[0], late.Fetch[0]
	if !m.HandOver(r.Gen, r.ID, l.ID, 4) {
		t.Fatal("hand-over of chunks ahead of the lead refused")
	}
	if m.RunLeft(r.ID) != 0 || m.RunLeft(l.ID) != 4 || m.flights[5] != l.ID || m.flights[6] != l.ID {
		t.Fatalf("after hand-over: late %d left, lead %d left, flights %v", m.RunLeft(r.ID), m.RunLeft(l.ID), m.flights)
	}
	if m.failures != 0 {
		t.Fatal("a hand-over counted as a failure")
	}
	// A run keeps the chunks the lead has passed, and hands over the rest.
	other, _ := m.Want(byterange.Range{Start: 20, End: 40}, testRead, false, t0)
	o := other.Fetch[0]
	if m.HandOver(o.Gen, o.ID, l.ID, 2) {
		t.Fatal("the run ended though the lead has passed its chunk 2")
	}
	if !m.Owns(o.Gen, o.ID, 2) || m.Owns(o.Gen, o.ID, 3) || !m.Owns(l.Gen, l.ID, 3) || m.RunLeft(o.ID) != 1 {
		t.Fatalf("after a partial hand-over: flights %v, run left %d", m.flights, m.RunLeft(o.ID))
	}
	if m.HandOver(o.Gen+1, o.ID, l.ID, 0) || m.HandOver(o.Gen, o.ID, o.ID, 0) {
		t.Fatal("hand-over across generations or to itself")
	}
}

func TestBlobMachineAdoptionSetsUnverifiedBytesAside(t *testing.T) {
	m, _ := newTestMachine([]byterange.Range{{Start: 0, End: 20}}, 0)
	epoch := m.epoch
	a := m.Adopted()
	if !a.SetAside || !a.Wake || m.epoch != epoch+1 || m.phase != PhaseComplete {
		t.Errorf("adopted over unverified bytes: %+v epoch %d→%d phase %s; want set aside in a new epoch", a, epoch, m.epoch, m.phase)
	}
	fresh, _ := newTestMachine(nil, 0)
	if a := fresh.Adopted(); a.SetAside || fresh.epoch != 0 {
		t.Errorf("adopted with nothing present: %+v epoch %d; nothing to set aside", a, fresh.epoch)
	}
	m, _ = newTestMachine(nil, 0)
	m.dropGeneration(t0)
	if m.epoch != 1 {
		t.Errorf("a dropped generation starts epoch %d, want 1", m.epoch)
	}
}
