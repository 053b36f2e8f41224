package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache/internal/blobfsm"
	"github.com/imgfs/imgfs/internal/byterange"
	"github.com/imgfs/imgfs/internal/errdefs"
)

// Exact range readers fetch the bytes a read through a layer index asks
// for, not the chunks around them (cache/internal/blobfsm's exact.go).
// These tests count the bytes a memFetcher serves: exact numbers, no
// timing. The store's chunks are 64 KiB (testStore), as is ExactGap.

func openExact(t *testing.T, s *Store, desc ocispec.Descriptor, f *memFetcher) *RangeReader {
	t.Helper()
	var r *RangeReader
	var err error
	if f != nil {
		r, err = s.NewExactRangeReader(desc, f)
	} else {
		r, err = s.NewExactRangeReader(desc, nil) // offline: not a nil *memFetcher
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// readExact reads [off, off+n) through r and checks the bytes.
func readExact(t *testing.T, r *RangeReader, data []byte, off, n int64) {
	t.Helper()
	p := make([]byte, n)
	if _, err := r.ReadAt(context.Background(), p, off); err != nil {
		t.Fatalf("read [%d,%d): %v", off, off+n, err)
	}
	if !bytes.Equal(p, data[off:off+n]) {
		t.Fatalf("read [%d,%d): wrong bytes", off, off+n)
	}
}

func TestExactReadsFetchOnlyTheirBytes(t *testing.T) {
	s := testStore(t, Options{})
	desc, f := testBlob(t, 1<<20+777)
	r := openExact(t, s, desc, f)
	steps := []struct {
		name        string
		off, n      int64
		pulled, req int64 // totals after the step
	}{
		{"a 300-byte read pulls 300 bytes, not its chunk", 100_000, 300, 300, 1},
		{"an overlapping read pulls only what is missing", 100_200, 200, 400, 2},
		{"a read of present bytes pulls nothing", 100_000, 400, 400, 2},
		{"the footer: the last 51 bytes", desc.Size - 51, 51, 451, 3},
		{"a read elsewhere", 200_000, 100, 551, 4},
		{"missing on both sides of a 100-byte present gap: one request, the gap read and dropped", 199_000, 1200, 551 + 1100 + 100, 5},
		{"missing on both sides of the 400 present bytes: one request of all 2000", 99_000, 2000, 1751 + 2000, 6},
	}
	for _, st := range steps {
		readExact(t, r, f.data, st.off, st.n)
		if got, req := f.bytes.Load(), f.requests.Load(); got != st.pulled || req != st.req {
			t.Fatalf("%s: pulled %d bytes in %d requests, want %d in %d", st.name, got, req, st.pulled, st.req)
		}
	}
	// A present stretch of ExactGap or more splits a read in two requests.
	readExact(t, r, f.data, 500_000, 70_000)
	before, reqs := f.bytes.Load(), f.requests.Load()
	readExact(t, r, f.data, 490_000, 90_000)
	if got, req := f.bytes.Load()-before, f.requests.Load()-reqs; got != 20_000 || req != 2 {
		t.Fatalf("around a 70,000-byte present stretch: pulled %d bytes in %d requests, want 20000 in 2", got, req)
	}
	if s.Exists(desc) {
		t.Fatal("partial blob committed")
	}
}

func TestBulkReadAfterExactReadsFetchesOnlyTheRest(t *testing.T) {
	s := testStore(t, Options{})
	desc, f := testBlob(t, 1<<20+777)
	r := openExact(t, s, desc, f)
	const mid = 3*64<<10 + 1000
	readExact(t, r, f.data, 0, 5000)            // a sub-chunk prefix: the hash cursor stops mid-chunk
	readExact(t, r, f.data, mid, 1000)          // in the middle of chunk 3
	readExact(t, r, f.data, desc.Size-100, 100) // the tail
	exact := f.bytes.Load()
	if exact != 6100 {
		t.Fatalf("exact reads pulled %d bytes, want 6100", exact)
	}
	// A verifying reader reads it all: whole chunks where nothing is
	// present, the missing bytes of the split chunks (0, 3 and the last)
	// exactly. In chunk 3 the 1000 present bytes lie between two missing
	// pieces less than ExactGap apart: one request, the 1000 read and
	// dropped. Nothing else is fetched twice.
	full := openReader(t, s, desc, f)
	got := readAll(t, full, int(desc.Size), 128<<10)
	if !bytes.Equal(got, f.data) {
		t.Fatal("wrong bytes")
	}
	waitComplete(t, s, desc)
	if pulled := f.bytes.Load(); pulled != desc.Size+1000 {
		t.Fatalf("pulled %d bytes in all, want the blob's %d plus the 1000 bridged", pulled, desc.Size)
	}
}

// TestExactPresenceSurvivesReopen: sub-chunk present ranges are saved,
// resumed by the next process, served offline, and not fetched again;
// hashing resumes over a prefix that ends mid-chunk, and the blob
// commits.
func TestExactPresenceSurvivesReopen(t *testing.T) {
	root := t.TempDir()
	s := testStoreAt(t, root, Options{})
	desc, f := testBlob(t, 1<<20)
	r, err := s.NewExactRangeReader(desc, f)
	if err != nil {
		t.Fatal(err)
	}
	readExact(t, r, f.data, 0, 5000)
	readExact(t, r, f.data, 300_000, 123)
	r.Close()
	waitClosed(t, s)
	var st blobState
	statePath, err := s.ingestPath(desc.Digest, desc.Size, ".state")
	var data []byte
	if err == nil {
		data, err = os.ReadFile(statePath)
	}
	if err == nil {
		err = json.Unmarshal(data, &st)
	}
	if err != nil || fmt.Sprint(st.Ranges) != "[[0 5000] [300000 300123]]" || st.HashedTo != 5000 {
		t.Fatalf("saved state %+v (%v), want [0,5000) and [300000,300123), hashed to 5000", st, err)
	}

	// The next process: offline, the saved bytes are served, others not.
	s2 := testStoreAt(t, root, Options{})
	off := openExact(t, s2, desc, nil)
	readExact(t, off, f.data, 0, 5000)
	readExact(t, off, f.data, 300_000, 123)
	if _, err := off.ReadAt(context.Background(), make([]byte, 1), 5000); !errors.Is(err, errdefs.ErrOffline) {
		t.Fatalf("offline read of a missing byte: %v, want ErrOffline", err)
	}
	off.Close()
	f2 := &memFetcher{data: f.data}
	if err := s2.Fill(context.Background(), desc, f2, nil); err != nil {
		t.Fatal(err)
	}
	// Chunk 4 holds [300000,300123) between two missing pieces: one
	// request, the 123 bytes read and dropped.
	if got := f2.bytes.Load(); got != desc.Size-5000 {
		t.Fatalf("fill pulled %d bytes, want the %d missing plus the 123 bridged", got, desc.Size-5123)
	}
	if !s2.Exists(desc) {
		t.Fatal("not committed")
	}
}

// TestUnsyncedExactBytesAreNotResumed: the state claims bytes only after
// they were synced, so bytes whose sync failed (as if the process died
// before it) are fetched again by the next process.
func TestUnsyncedExactBytesAreNotResumed(t *testing.T) {
	root := t.TempDir()
	s := testStoreAt(t, root, Options{})
	s.hooks.syncData = func(*os.File) error { return errors.New("injected: died before the sync") }
	desc, f := testBlob(t, 300_000)
	r, err := s.NewExactRangeReader(desc, f)
	if err != nil {
		t.Fatal(err)
	}
	readExact(t, r, f.data, 1000, 5000)
	r.Close()
	waitClosed(t, s)
	s2 := testStoreAt(t, root, Options{})
	off := openExact(t, s2, desc, nil)
	if _, err := off.ReadAt(context.Background(), make([]byte, 10), 1000); !errors.Is(err, errdefs.ErrOffline) {
		t.Fatalf("offline read of bytes never synced: %v, want ErrOffline", err)
	}
}

// TestExactBytesFailingTheirCheckAreFetchedAfresh: bytes that fail the
// caller's check are dropped with the generation (a fresh file), and the
// next read after the backoff fetches exactly them again.
func TestExactBytesFailingTheirCheckAreFetchedAfresh(t *testing.T) {
	s := testStore(t, Options{})
	var clock atomic.Int64
	start := time.Now()
	s.now = func() time.Time { return start.Add(time.Duration(clock.Load()) * time.Second) }
	desc, f := testBlob(t, 1<<20)
	r := openExact(t, s, desc, f)
	readExact(t, r, f.data, 0, 1000) // good bytes, dropped with the generation below
	f.corruptN.Store(1)
	check := func(p []byte) error {
		if !bytes.Equal(p, f.data[400_000:400_000+len(p)]) {
			return errors.New("chunk digest mismatch")
		}
		return nil
	}
	p := make([]byte, 3000)
	if _, err := r.ReadCheckedAt(context.Background(), p, 400_000, check); err == nil {
		t.Fatal("corrupt bytes passed the check")
	}
	if _, err := r.ReadCheckedAt(context.Background(), p, 400_000, check); !errors.Is(err, errdefs.ErrDigestMismatch) {
		t.Fatalf("read in the backoff: %v, want it to fail fast", err)
	}
	if s.Stats().DigestMismatches != 1 {
		t.Fatalf("%d mismatches counted", s.Stats().DigestMismatches)
	}
	clock.Add(2)
	before := f.bytes.Load()
	if _, err := r.ReadCheckedAt(context.Background(), p, 400_000, check); err != nil {
		t.Fatalf("read after the backoff: %v", err)
	}
	if got := f.bytes.Load() - before; got != 3000 {
		t.Fatalf("refetch pulled %d bytes, want the 3000 asked", got)
	}
	// The good bytes dropped with the generation come again too.
	before = f.bytes.Load()
	readExact(t, r, f.data, 0, 1000)
	if got := f.bytes.Load() - before; got != 1000 {
		t.Fatalf("pulled %d bytes, want 1000", got)
	}
}

// TestExactAndChunkReadersTogether runs exact readers at random ranges
// beside verifying readers of the whole blob, under the race detector in
// make test: every read returns the blob's bytes, the blob commits, and no
// request fetched more than its own bytes and the gaps it bridged.
func TestExactAndChunkReadersTogether(t *testing.T) {
	s := testStore(t, Options{})
	desc, f := testBlob(t, 2<<20+333)
	ctx := context.Background()
	errs := make(chan error, 16)
	for i := range 6 {
		go func() {
			r, err := s.NewExactRangeReader(desc, f)
			if err != nil {
				errs <- err
				return
			}
			defer r.Close()
			rng := rand.New(rand.NewPCG(uint64(i), 3))
			for range 40 {
				off := rng.Int64N(desc.Size)
				n := min(desc.Size-off, 1+rng.Int64N(200_000))
				p := make([]byte, n)
				if _, err := r.ReadAt(ctx, p, off); err != nil {
					errs <- fmt.Errorf("exact read [%d,%d): %w", off, off+n, err)
					return
				}
				if !bytes.Equal(p, f.data[off:off+n]) {
					errs <- fmt.Errorf("exact read [%d,%d): wrong bytes", off, off+n)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 2 {
		go func() {
			r, err := s.NewReader(desc, f)
			if err != nil {
				errs <- err
				return
			}
			defer r.Close()
			got, err := readAllErr(r, int(desc.Size), 100_000)
			if err == nil && !bytes.Equal(got, f.data) {
				err = errors.New("verifying reader: wrong bytes")
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	waitComplete(t, s, desc)
	t.Logf("pulled %d bytes in %d requests for a %d-byte blob", f.bytes.Load(), f.requests.Load(), desc.Size)
	if pulled, reqs := f.bytes.Load(), f.requests.Load(); pulled > desc.Size+reqs*blobfsm.ExactGap {
		t.Fatalf("pulled %d bytes in %d requests for a %d-byte blob", pulled, reqs, desc.Size)
	}
}

// TestMismatchDropsSubChunkBytes: a whole-blob mismatch drops the bytes
// exact reads landed too, in a fresh file, and they are fetched afresh
// once the backoff is over.
func TestMismatchDropsSubChunkBytes(t *testing.T) {
	s := testStore(t, Options{})
	var clock atomic.Int64
	start := time.Now()
	s.now = func() time.Time { return start.Add(time.Duration(clock.Load()) * time.Second) }
	desc, f := testBlob(t, 300_000)
	r := openExact(t, s, desc, f)
	readExact(t, r, f.data, 1000, 5000)
	before := partialPath(t, s, desc)
	fiBefore, err := os.Stat(before)
	if err != nil {
		t.Fatal(err)
	}
	f.corrupt = true // every later request's first byte is flipped
	full := openReader(t, s, desc, f)
	if _, err := readAllErr(full, int(desc.Size), 64<<10); !errors.Is(err, errdefs.ErrDigestMismatch) {
		t.Fatalf("read to the end of a corrupt blob: %v, want a digest mismatch", err)
	}
	if s.Exists(desc) || s.Stats().DigestMismatches != 1 {
		t.Fatalf("committed %v, %d mismatches", s.Exists(desc), s.Stats().DigestMismatches)
	}
	if fi, err := os.Stat(before); err != nil || os.SameFile(fi, fiBefore) {
		t.Fatalf("the partial file was not replaced (%v)", err)
	}
	f.corrupt = false
	clock.Add(2)
	pulled := f.bytes.Load()
	readExact(t, r, f.data, 1000, 5000)
	if got := f.bytes.Load() - pulled; got != 5000 {
		t.Fatalf("after the mismatch, the read pulled %d bytes, want its 5000 again", got)
	}
}

// TestExactPiecesKeepODirectAligned: exact pieces land at any offset, so
// those O_DIRECT cannot take go through the page cache; no unaligned write
// reaches the O_DIRECT descriptor (which would refuse it and turn O_DIRECT
// off for the store), and a later bulk read still lands its chunks with
// O_DIRECT.
func TestExactPiecesKeepODirectAligned(t *testing.T) {
	s := testStore(t, Options{})
	var mu sync.Mutex
	var direct []byterange.Range
	s.hooks.directWrite = func(f *os.File, p []byte, off int64) (int, error) {
		mu.Lock()
		direct = append(direct, byterange.Range{Start: off, End: off + int64(len(p))})
		mu.Unlock()
		return f.WriteAt(p, off)
	}
	desc, f := testBlob(t, 1<<20)
	r := openExact(t, s, desc, f)
	if s.directOff.Load() {
		t.Skip("the test directory's filesystem refuses O_DIRECT")
	}
	readExact(t, r, f.data, 1000, 5000)      // unaligned
	readExact(t, r, f.data, 8192, 3*4096)    // aligned, within a chunk
	readExact(t, r, f.data, 200_001, 70_000) // across a chunk boundary
	full := openReader(t, s, desc, f)
	if got := readAll(t, full, int(desc.Size), 64<<10); !bytes.Equal(got, f.data) {
		t.Fatal("wrong bytes")
	}
	waitComplete(t, s, desc)
	mu.Lock()
	defer mu.Unlock()
	if s.directOff.Load() {
		t.Fatal("O_DIRECT was turned off")
	}
	var whole int
	for _, w := range direct {
		if w.Start%directAlign != 0 || w.Len()%directAlign != 0 {
			t.Errorf("unaligned O_DIRECT write %v", w)
		}
		if w.Len() == 64<<10 {
			whole++
		}
	}
	if whole == 0 {
		t.Errorf("no whole chunk landed with O_DIRECT: %v", direct)
	}
}
