package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache/internal/blobfsm"
	"github.com/imgfs/imgfs/cache/internal/layout"
	"github.com/imgfs/imgfs/internal/errdefs"
	"github.com/imgfs/imgfs/internal/oci"
)

// These tests prove the cache's trust model: no unverified byte gets past
// a reader that reads to the end, a hostile or broken source cannot wedge
// or grow the cache, and nothing wrong is ever committed.

// readAllErr reads r sequentially in bs-byte reads and returns the bytes
// read and the first error.
func readAllErr(r *Reader, size, bs int) ([]byte, error) {
	out := make([]byte, 0, size)
	buf := make([]byte, bs)
	for off := 0; off < size; {
		n, err := r.ReadAt(context.Background(), buf, int64(off))
		if err != nil && err != io.EOF {
			return out, err
		}
		out = append(out, buf[:n]...)
		off += n
	}
	return out, nil
}

func partialPath(t *testing.T, s *Store, desc ocispec.Descriptor) string {
	t.Helper()
	p, err := s.ingestPath(desc.Digest, desc.Size, ".partial")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadToEOFFailsOnCorruptBlob(t *testing.T) {
	s := testStore(t, Options{})
	var skew atomic.Int64 // how far the store's clock runs ahead
	s.now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	mismatched := make(chan digest.Digest, 4)
	s.OnMismatch(func(d digest.Digest) { mismatched <- d })
	desc, f := testBlob(t, 300_000)
	f.corrupt = true
	r, err := s.NewReader(desc, f)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// Lazy mode: a read short of the end is served as bytes arrive.
	if _, err := r.ReadAt(context.Background(), make([]byte, 1000), 100_000); err != nil {
		t.Fatalf("mid-blob read: %v", err)
	}
	_, err = readAllErr(r, int(desc.Size), 64<<10)
	if !errors.Is(err, errdefs.ErrDigestMismatch) {
		t.Fatalf("read to EOF of a corrupt blob = %v, want errdefs.ErrDigestMismatch", err)
	}
	if got := <-mismatched; got != desc.Digest {
		t.Fatalf("OnMismatch told of %s", got)
	}
	if s.Exists(desc) {
		t.Fatal("corrupt blob committed")
	}
	// Once the source is honest and the mismatch's backoff is over, the
	// same handle reads the right bytes.
	skew.Store(int64(blobfsm.MismatchBackoff(1)))
	f2 := &memFetcher{data: f.data}
	r2, _ := s.NewReader(desc, f2)
	defer r2.Close()
	got, err := readAllErr(r, int(desc.Size), 64<<10)
	if err != nil || !bytes.Equal(got, f.data) {
		t.Fatalf("reread after the fault: %v", err)
	}
	if f2.bytes.Load() != desc.Size {
		t.Fatalf("reread fetched %d bytes, want all %d afresh", f2.bytes.Load(), desc.Size)
	}
}

func TestStrictServesNothingUnverified(t *testing.T) {
	s := testStore(t, Options{Verify: VerifyStrict})
	desc, f := testBlob(t, 300_000)
	f.corrupt = true
	r, _ := s.NewReader(desc, f)
	defer r.Close()
	buf := make([]byte, 10)
	if n, err := r.ReadAt(context.Background(), buf, 0); !errors.Is(err, errdefs.ErrDigestMismatch) || n != 0 {
		t.Fatalf("strict first read of a corrupt blob = %d, %v; want errdefs.ErrDigestMismatch", n, err)
	}

	desc2, f2 := testBlob(t, 300_001)
	r2, _ := s.NewReader(desc2, f2)
	defer r2.Close()
	if _, err := r2.ReadAt(context.Background(), buf, 0); err != nil {
		t.Fatal(err)
	}
	if got := f2.bytes.Load(); got != desc2.Size {
		t.Fatalf("strict read answered after %d of %d bytes fetched", got, desc2.Size)
	}
	if !bytes.Equal(buf, f2.data[:10]) {
		t.Fatal("wrong bytes")
	}
}

func TestMismatchReplacesFileNotTruncate(t *testing.T) {
	s := testStore(t, Options{})
	desc, f := testBlob(t, 200_000)
	f.corrupt = true
	r, _ := s.NewReader(desc, f)
	defer r.Close()
	if _, err := r.ReadAt(context.Background(), make([]byte, 10), 0); err != nil {
		t.Fatal(err)
	}
	// Hold the partial file as a reader in flight would.
	path := partialPath(t, s, desc)
	held, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	before := make([]byte, 64<<10)
	if _, err := held.ReadAt(before, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := readAllErr(r, int(desc.Size), 64<<10); !errors.Is(err, errdefs.ErrDigestMismatch) {
		t.Fatalf("read to EOF = %v", err)
	}
	after := make([]byte, 64<<10)
	if _, err := held.ReadAt(after, 0); err != nil || !bytes.Equal(before, after) {
		t.Fatalf("bytes changed under a reader of the old file: %v", err)
	}
	fi, _ := held.Stat()
	if fi.Size() != desc.Size {
		t.Fatalf("old file truncated to %d", fi.Size())
	}
	now, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if os.SameFile(fi, now) {
		t.Fatal("the partial was not replaced by a new file")
	}
	if now.Size() != 0 {
		t.Fatalf("the new partial holds %d bytes, want none", now.Size())
	}
}

func TestMismatchBacksOffThenFetchesAfresh(t *testing.T) {
	s := testStore(t, Options{})
	t0 := time.Unix(1_000_000, 0)
	var clock atomic.Int64 // seconds past t0, as the store sees them
	s.now = func() time.Time { return t0.Add(time.Duration(clock.Load()) * time.Second) }
	desc, f := testBlob(t, 100_000)
	f.corrupt = true
	r, _ := s.NewReader(desc, f)
	defer r.Close()
	for round := 1; round <= 3; round++ {
		if _, err := readAllErr(r, int(desc.Size), 64<<10); !errors.Is(err, errdefs.ErrDigestMismatch) {
			t.Fatalf("round %d: reading to the end = %v, want errdefs.ErrDigestMismatch", round, err)
		}
		// Until the backoff is over, reads and fills fail at once
		// without asking the lying source again.
		requests := f.requests.Load()
		_, err := r.ReadAt(context.Background(), make([]byte, 10), 0)
		if !errors.Is(err, errdefs.ErrDigestMismatch) || !strings.Contains(err.Error(), "fetching afresh after") {
			t.Fatalf("round %d: read in the backoff = %v, want a fast errdefs.ErrDigestMismatch", round, err)
		}
		if err := s.Fill(context.Background(), desc, f, nil); !errors.Is(err, errdefs.ErrDigestMismatch) {
			t.Fatalf("round %d: Fill in the backoff = %v", round, err)
		}
		if f.requests.Load() != requests {
			t.Fatalf("round %d: a lying source was asked again within the backoff", round)
		}
		clock.Add(int64(blobfsm.MismatchBackoff(round) / time.Second))
	}
	entries, _ := os.ReadDir(filepath.Join(s.root, "ingest"))
	if len(entries) > 3 {
		t.Fatalf("ingest/ grew to %d files", len(entries))
	}
	// Once the source tells the truth, the next read past the backoff
	// fetches afresh and the blob commits.
	f.corrupt = false
	got, err := readAllErr(r, int(desc.Size), 64<<10)
	if err != nil || !bytes.Equal(got, f.data) {
		t.Fatalf("read after the source recovered: %v", err)
	}
}

func TestPermanentErrorFailsFastWithoutRetry(t *testing.T) {
	s := testStore(t, Options{FetchTimeout: time.Minute})
	desc, f := testBlob(t, 100_000)
	f.permanent = true
	r, _ := s.NewReader(desc, f)
	defer r.Close()
	for i := 0; i < 3; i++ {
		if _, err := r.ReadAt(context.Background(), make([]byte, 10), 0); !errors.Is(err, errdefs.ErrPermanent) {
			t.Fatalf("read %d = %v, want errdefs.ErrPermanent", i, err)
		}
	}
	if err := s.Fill(context.Background(), desc, f, nil); !errors.Is(err, errdefs.ErrPermanent) {
		t.Fatalf("Fill = %v, want errdefs.ErrPermanent", err)
	}
	if got := f.requests.Load(); got != 1 {
		t.Fatalf("%d requests, want 1: a permanent error is not retried", got)
	}
}

func TestCommitFailureWakesWaitersAndNextOpenCommits(t *testing.T) {
	injected := errors.New("injected ENOSPC")
	var failing sync.Mutex // guards fail
	fail := true
	s := testStore(t, Options{})
	orig := s.hooks.renameFile
	s.hooks.renameFile = func(from, to string) error {
		failing.Lock()
		defer failing.Unlock()
		if fail && strings.Contains(to, string(filepath.Separator)+"blobs"+string(filepath.Separator)) {
			return injected
		}
		return orig(from, to)
	}
	desc, f := testBlob(t, 300_000)

	// A reader waiting for the verdict is answered: the bytes are verified.
	r, _ := s.NewReader(desc, f)
	got, err := readAllErr(r, int(desc.Size), 64<<10)
	if err != nil || !bytes.Equal(got, f.data) {
		t.Fatalf("read of a verified blob whose commit fails: %v", err)
	}
	// A fill waiting for the commit gets its error.
	if err := s.Fill(context.Background(), desc, f, nil); !errors.Is(err, injected) {
		t.Fatalf("Fill = %v, want the commit's error", err)
	}
	r.Close()
	waitClosed(t, s)
	if s.Exists(desc) {
		t.Fatal("committed despite the failure")
	}
	statePath, _ := s.ingestPath(desc.Digest, desc.Size, ".state")
	if _, err := os.Stat(statePath); err != nil {
		t.Fatalf("no saved state to commit from: %v", err)
	}

	failing.Lock()
	fail = false
	failing.Unlock()
	// The next open, in another process, verifies and commits without
	// fetching a byte.
	s2 := testStoreAt(t, s.root, Options{ChunkSize: 64 << 10})
	f2 := &memFetcher{data: f.data}
	if err := s2.Fill(context.Background(), desc, f2, nil); err != nil {
		t.Fatalf("Fill after the fault: %v", err)
	}
	if !s2.Exists(desc) || f2.requests.Load() != 0 {
		t.Fatalf("exists %v after %d requests; want committed from the saved bytes", s2.Exists(desc), f2.requests.Load())
	}
}

func TestCommitFailureRetriedByNextFillInProcess(t *testing.T) {
	injected := errors.New("injected EIO")
	var calls int
	var mu sync.Mutex
	s := testStore(t, Options{})
	orig := s.hooks.syncFile
	s.hooks.syncFile = func(f *os.File) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls <= 2 { // the early sync and the commit's
			return injected
		}
		return orig(f)
	}
	desc, f := testBlob(t, 200_000)
	r, _ := s.NewReader(desc, f) // keeps the blob open across fills
	defer r.Close()
	if err := s.Fill(context.Background(), desc, f, nil); !errors.Is(err, injected) {
		t.Fatalf("Fill = %v, want the fsync error", err)
	}
	if err := s.Fill(context.Background(), desc, f, nil); err != nil {
		t.Fatalf("second Fill = %v", err)
	}
	if !s.Exists(desc) || f.bytes.Load() != desc.Size {
		t.Fatalf("exists %v, fetched %d", s.Exists(desc), f.bytes.Load())
	}
}

// zeroFetcher serves a blob of any claimed size whose bytes are all zero,
// and blocks each body until ctx ends, counting what it was asked.
type zeroFetcher struct {
	mu       sync.Mutex
	active   int
	max      int
	requests int
}

func (z *zeroFetcher) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	return nil, errdefs.ErrRangeUnsupported
}

func (z *zeroFetcher) FetchRange(ctx context.Context, _ ocispec.Descriptor, off, n int64) (io.ReadCloser, error) {
	z.mu.Lock()
	z.requests++
	z.active++
	z.max = max(z.max, z.active)
	z.mu.Unlock()
	if off == 0 {
		// The first chunk arrives; the rest stall.
		z.mu.Lock()
		z.active--
		z.mu.Unlock()
		return io.NopCloser(io.LimitReader(zeroReader{}, n)), nil
	}
	<-ctx.Done()
	z.mu.Lock()
	z.active--
	z.mu.Unlock()
	return nil, ctx.Err()
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestClaimedHugeSizeCostsNothing(t *testing.T) {
	const claim = 15 << 40
	s := testStore(t, Options{MaxConnections: 4, FetchTimeout: time.Minute})
	desc := ocispec.Descriptor{Digest: digest.FromString("not 15 TiB"), Size: claim}
	z := &zeroFetcher{}
	goroutines := runtime.NumGoroutine()
	r, err := s.NewReader(desc, z)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.ReadAt(context.Background(), make([]byte, 4096), 0); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(partialPath(t, s, desc))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > 64<<10 {
		t.Fatalf("partial file is %d bytes after one 64 KiB chunk", fi.Size())
	}
	// A read of the last byte needs the verdict, so it asks for the whole
	// blob: bounded by the connections, not by the claim.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := r.ReadAt(ctx, make([]byte, 1), claim-1)
		done <- err
	}()
	waitFor(t, func() bool {
		z.mu.Lock()
		defer z.mu.Unlock()
		return z.active >= 4
	})
	z.mu.Lock()
	requests, most := z.requests, z.max
	z.mu.Unlock()
	if most > 4 || requests > 6 {
		t.Fatalf("%d requests, %d at once for a 15 TiB claim with 4 connections", requests, most)
	}
	if extra := runtime.NumGoroutine() - goroutines; extra > 30 {
		t.Fatalf("%d more goroutines for a 15 TiB claim", extra)
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	if m.HeapInuse > 1<<30 {
		t.Fatalf("heap in use %d", m.HeapInuse)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled read = %v", err)
	}
}

// waitFor polls cond until it holds; the test's own timeout bounds it.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for !cond() {
		time.Sleep(2 * time.Millisecond)
	}
}

func TestConnectionQueueIsNotAStall(t *testing.T) {
	// One connection and a short idle timeout: the runs queued behind the
	// first wait far longer than the timeout, while bytes keep flowing.
	s := testStore(t, Options{ChunkSize: 4096, MaxConnections: 1, FetchTimeout: 300 * time.Millisecond})
	desc, f := testBlob(t, 48*4096)
	f.pace = 10 * time.Millisecond
	if err := s.Fill(context.Background(), desc, f, nil); err != nil {
		t.Fatalf("Fill over a slow link: %v", err)
	}
	if !s.Exists(desc) {
		t.Fatal("not committed")
	}
	if got := f.requests.Load(); got < 6 {
		t.Fatalf("%d requests; the test needs several queued runs", got)
	}
}

func TestSecondStoreNeverWritesSharedPartial(t *testing.T) {
	root := t.TempDir()
	opts := Options{ChunkSize: 64 << 10}
	s1 := testStoreAt(t, root, opts)
	s2 := testStoreAt(t, root, opts)
	desc, good := testBlob(t, 400_000)
	bad := &memFetcher{data: good.data, corrupt: true}

	r1, _ := s1.NewReader(desc, good)
	defer r1.Close()
	if _, err := r1.ReadAt(context.Background(), make([]byte, 10), 0); err != nil {
		t.Fatal(err)
	}
	path := partialPath(t, s1, desc)
	before, _ := os.ReadFile(path)
	fiBefore, _ := os.Stat(path)

	// The second process, behind a corrupting proxy, reads to the end.
	r2, _ := s2.NewReader(desc, bad)
	if _, err := readAllErr(r2, int(desc.Size), 64<<10); !errors.Is(err, errdefs.ErrDigestMismatch) {
		t.Fatalf("corrupt read in the second store = %v", err)
	}
	after, _ := os.ReadFile(path)
	fiAfter, _ := os.Stat(path)
	if !bytes.Equal(before, after) || !os.SameFile(fiBefore, fiAfter) {
		t.Fatal("the second store wrote the shared partial")
	}
	blobPath, _ := s1.blobPath(desc.Digest)
	if _, err := os.Stat(blobPath); err == nil {
		t.Fatal("a wrong blob reached blobs/")
	}
	r2.Close()

	// A reader in the second store, opened before the first commits,
	// takes the committed blob instead of fetching.
	honest := &memFetcher{data: good.data}
	r3, _ := s2.NewReader(desc, honest)
	defer r3.Close()
	if got, err := readAllErr(r1, int(desc.Size), 64<<10); err != nil || !bytes.Equal(got, good.data) {
		t.Fatalf("first store's read: %v", err)
	}
	waitComplete(t, s1, desc)
	if got, err := readAllErr(r3, int(desc.Size), 64<<10); err != nil || !bytes.Equal(got, good.data) {
		t.Fatalf("second store's read after the commit: %v", err)
	}
	if honest.requests.Load() != 0 {
		t.Fatalf("second store fetched %d times a blob the first committed", honest.requests.Load())
	}
	data, _ := os.ReadFile(blobPath)
	if digest.FromBytes(data) != desc.Digest {
		t.Fatal("wrong blob in blobs/")
	}
	r3.Close()
	waitClosed(t, s2)
	if leftovers, _ := filepath.Glob(filepath.Join(root, "ingest", "*.private.tmp")); len(leftovers) != 0 {
		t.Fatalf("private partials left behind: %v", leftovers)
	}
}

func TestSweepRemovesOrphansKeepsLiveFiles(t *testing.T) {
	root := t.TempDir()
	opts := Options{ChunkSize: 64 << 10}
	s1 := testStoreAt(t, root, opts)
	ingest := filepath.Join(root, "ingest")
	write := func(name string) string {
		p := filepath.Join(ingest, name)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	deadTmp := write("sha256-dead.123.tmp")
	deadRoot := filepath.Join(root, ".index.json.456.tmp")
	os.WriteFile(deadRoot, nil, 0o600)
	orphan := write("sha256-" + strings.Repeat("a", 64) + "-10.partial")
	resumable := write("sha256-" + strings.Repeat("b", 64) + "-10.partial")
	resumableState := write("sha256-" + strings.Repeat("b", 64) + "-10.state")
	liveTmp, err := layout.CreateLockedTemp(ingest, "live.*.tmp")
	if err != nil {
		t.Fatal(err)
	}
	defer liveTmp.Close()

	// A live owner in the first store: its partial has no state yet.
	desc, f := testBlob(t, 300_000)
	r, _ := s1.NewReader(desc, f)
	defer r.Close()
	if _, err := r.ReadAt(context.Background(), make([]byte, 10), 0); err != nil {
		t.Fatal(err)
	}
	// A live private partial in the first store.
	s1b, _ := Open(root, opts)
	defer s1b.Close()
	rp, _ := s1b.NewReader(desc, f)
	defer rp.Close()
	private, _ := filepath.Glob(filepath.Join(ingest, "*.private.tmp"))
	if len(private) != 1 {
		t.Fatalf("private partials: %v", private)
	}

	testStoreAt(t, root, opts) // opening a store sweeps ingest/
	for _, gone := range []string{deadTmp, deadRoot, orphan} {
		if _, err := os.Stat(gone); err == nil {
			t.Errorf("%s not swept", filepath.Base(gone))
		}
	}
	for _, kept := range []string{resumable, resumableState, liveTmp.Name(), partialPath(t, s1, desc), private[0]} {
		if _, err := os.Stat(kept); err != nil {
			t.Errorf("%s swept: %v", filepath.Base(kept), err)
		}
	}
}

func TestCheckDigest(t *testing.T) {
	hex64 := strings.Repeat("a", 64)
	tests := []struct {
		name string
		d    string
		ok   bool
	}{
		{"sha256 valid", "sha256:" + hex64, true},
		{"sha512 valid", "sha512:" + strings.Repeat("0f", 64), true},
		{"traversal", "sha256:../../etc/passwd", false},
		{"traversal of the right length", "sha256:../../" + hex64[:58], false},
		{"no algorithm", hex64, false},
		{"empty", "", false},
		{"empty hex", "sha256:", false},
		{"short hex", "sha256:" + hex64[:63], false},
		{"long hex", "sha256:" + hex64 + "a", false},
		{"uppercase hex", "sha256:" + strings.ToUpper(hex64), false},
		{"uppercase algorithm", "SHA256:" + hex64, false},
		{"md5", "md5:" + hex64[:32], false},
		{"sha384", "sha384:" + strings.Repeat("a", 96), false},
		{"sha512 with a sha256 length", "sha512:" + hex64, false},
		{"slash in hex", "sha256:" + hex64[:63] + "/", false},
		{"newline", "sha256:" + hex64[:63] + "\n", false},
		{"two colons", "sha256:sha256:" + hex64[:57], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := oci.CheckDigest(digest.Digest(tt.d))
			if (err == nil) != tt.ok {
				t.Fatalf("oci.CheckDigest(%q) = %v", tt.d, err)
			}
			if err != nil && (!errors.Is(err, oci.ErrInvalidDigest) || strings.Contains(err.Error(), "\n")) {
				t.Fatalf("error %q: want one line wrapping oci.ErrInvalidDigest", err)
			}
		})
	}
}

func TestNoPathFromInvalidDigest(t *testing.T) {
	s := testStore(t, Options{})
	outside := filepath.Join(filepath.Dir(s.root), "victim")
	if err := os.WriteFile(outside, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(filepath.Join(s.root, "sources", "sha256"), outside)
	evil := digest.Digest("sha256:" + rel)
	desc := ocispec.Descriptor{Digest: evil, Size: 4}
	ctx := context.Background()
	if s.Exists(desc) {
		t.Error("Exists of a traversal digest")
	}
	if _, ok := s.CompletePath(desc); ok {
		t.Error("CompletePath of a traversal digest")
	}
	checks := map[string]error{
		"AddSource": s.AddSource(evil, "example.com/repo"),
		"Ingest":    s.Ingest(ctx, desc, strings.NewReader("keep")),
		"SetRef":    s.SetRef("x", desc, nil),
		"Fill":      s.Fill(ctx, desc, &memFetcher{data: []byte("keep")}, nil),
	}
	_, checks["Sources"] = s.Sources(evil)
	_, checks["OpenBlob"] = s.OpenBlob(desc, nil)
	_, checks["ReadMetadata"] = s.ReadMetadata(ctx, desc)
	_, checks["NewReader"] = s.NewReader(desc, nil)
	for name, err := range checks {
		if !errors.Is(err, oci.ErrInvalidDigest) {
			t.Errorf("%s = %v, want oci.ErrInvalidDigest", name, err)
		}
	}
	if data, _ := os.ReadFile(outside); string(data) != "keep" {
		t.Fatalf("a file outside the cache changed: %q", data)
	}
	_, err := s.OpenBlob(ocispec.Descriptor{Digest: digest.FromString("x"), Size: -1}, nil)
	if err == nil || !strings.Contains(err.Error(), "negative size") {
		t.Fatalf("negative size = %v", err)
	}
	if err := s.AddSource(digest.FromString("x"), "a\nb"); err == nil {
		t.Fatal("AddSource accepted a name with a newline")
	}
}

func TestSameDigestOtherSizeNeverSharesFile(t *testing.T) {
	s := testStore(t, Options{})
	desc, f := testBlob(t, 100_000)
	liar := ocispec.Descriptor{Digest: desc.Digest, Size: desc.Size + 1}
	b1, err := s.OpenBlob(desc, f)
	if err != nil {
		t.Fatal(err)
	}
	defer b1.Close()
	b2, err := s.OpenBlob(liar, f)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if b1 == b2 || b1.partial == b2.partial {
		t.Fatal("one blob for two sizes")
	}
	if err := s.Fill(context.Background(), desc, f, nil); err != nil {
		t.Fatal(err)
	}
	if s.Exists(liar) {
		t.Fatal("the wrong size exists")
	}
}

func TestSHA512EndToEnd(t *testing.T) {
	s := testStore(t, Options{})
	data := bytes.Repeat([]byte("imgfs"), 50_000)
	desc := ocispec.Descriptor{Digest: digest.SHA512.FromBytes(data), Size: int64(len(data))}
	f := &memFetcher{data: data}
	r, _ := s.NewReader(desc, f)
	defer r.Close()
	if got, err := readAllErr(r, len(data), 64<<10); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read: %v", err)
	}
	waitComplete(t, s, desc)
	if _, err := os.Stat(filepath.Join(s.root, "blobs", "sha512", desc.Digest.Encoded())); err != nil {
		t.Fatal(err)
	}
	desc2 := ocispec.Descriptor{Digest: digest.SHA512.FromString("meta"), Size: 4}
	if err := s.Ingest(context.Background(), desc2, strings.NewReader("meta")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ReadMetadata(context.Background(), desc2); err != nil || string(got) != "meta" {
		t.Fatalf("ReadMetadata = %q, %v", got, err)
	}
}

func TestStateSavedOnlyAfterDataSync(t *testing.T) {
	var mu sync.Mutex
	var events []string
	record := func(e string) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}
	s := testStore(t, Options{})
	origSync, origRename := s.hooks.syncData, s.hooks.renameFile
	s.hooks.syncData = func(f *os.File) error {
		record("sync " + filepath.Base(f.Name()))
		return origSync(f)
	}
	s.hooks.renameFile = func(from, to string) error {
		record("rename " + filepath.Base(to))
		return origRename(from, to)
	}
	desc, f := testBlob(t, 500_000)
	r, _ := s.NewReader(desc, f)
	for _, off := range []int64{0, 200_000} {
		if _, err := r.ReadAt(context.Background(), make([]byte, 10), off); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	waitClosed(t, s)
	r, _ = s.NewReader(desc, f)
	if _, err := r.ReadAt(context.Background(), make([]byte, 10), 400_000); err != nil {
		t.Fatal(err)
	}
	r.Close()
	waitClosed(t, s)

	mu.Lock()
	defer mu.Unlock()
	saves := 0
	synced := false
	for _, e := range events {
		switch {
		case strings.HasPrefix(e, "sync ") && strings.HasSuffix(e, ".partial"):
			synced = true
		case strings.HasPrefix(e, "rename ") && strings.HasSuffix(e, ".state"):
			if !synced {
				t.Fatalf("state saved before its data was synced: %v", events)
			}
			synced = false
			saves++
		}
	}
	// One as the first chunk of each open lands and one per close; a
	// slow machine may add a periodic one.
	if saves < 4 {
		t.Fatalf("%d state saves, want at least one per first landing and one per close: %v", saves, events)
	}
}

func TestCacheDirPermissions(t *testing.T) {
	old := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(old) })
	root := filepath.Join(t.TempDir(), "cache")
	s := testStoreAt(t, root, Options{ChunkSize: 64 << 10})
	desc, f := testBlob(t, 100_000)
	if err := s.Fill(context.Background(), desc, f, nil); err != nil {
		t.Fatal(err)
	}
	desc2, f2 := testBlob(t, 200_000)
	r, _ := s.NewReader(desc2, f2)
	defer r.Close()
	if _, err := r.ReadAt(context.Background(), make([]byte, 10), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRef("example.com/a:b", desc, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.AddSource(desc.Digest, "example.com/a"); err != nil {
		t.Fatal(err)
	}
	err := filepath.Walk(root, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		mode := fi.Mode().Perm()
		switch {
		case fi.IsDir() && mode != 0o700:
			t.Errorf("%s: directory mode %o, want 700", path, mode)
		case !fi.IsDir() && mode&0o022 != 0:
			t.Errorf("%s: mode %o is writable by others", path, mode)
		case !fi.IsDir() && mode&0o077 != 0 && !strings.Contains(path, "blobs"):
			t.Errorf("%s: mode %o, want 600", path, mode)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestStoreGoJoinsCloseAndRefusesAfter(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var finished bool
	started := make(chan struct{})
	if err := s.Go(func(ctx context.Context) {
		close(started)
		<-ctx.Done()
		finished = true
	}); err != nil {
		t.Fatal(err)
	}
	<-started
	s.Close()
	if !finished {
		t.Fatal("Close returned before the background function")
	}
	if err := s.Go(func(context.Context) {}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Go after Close = %v, want ErrClosed", err)
	}
}

func TestParseVerifyMode(t *testing.T) {
	for in, want := range map[string]VerifyMode{"lazy": VerifyLazy, "strict": VerifyStrict} {
		if got, err := ParseVerifyMode(in); err != nil || got != want || got.String() != in {
			t.Errorf("ParseVerifyMode(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "Lazy", "none"} {
		if _, err := ParseVerifyMode(bad); err == nil {
			t.Errorf("ParseVerifyMode(%q) accepted", bad)
		}
	}
}

// A reader in a second process, behind a corrupting source, is served
// unverified bytes; then the first process commits the blob from an honest
// source. The commit vouches for the committed bytes, not for those the
// reader already had: its read of the last byte must not end cleanly.
func TestACommitElsewhereDoesNotVouchForBytesServedBefore(t *testing.T) {
	root := t.TempDir()
	opts := Options{ChunkSize: 64 << 10, Readahead: 2 * 64 << 10}
	s1 := testStoreAt(t, root, opts)
	s2 := testStoreAt(t, root, opts)
	desc, good := testBlob(t, 400_000)
	bad := &memFetcher{data: good.data, corrupt: true}

	r1 := openReader(t, s1, desc, good) // the first store owns the shared partial
	if _, err := r1.ReadAt(context.Background(), make([]byte, 10), 0); err != nil {
		t.Fatal(err)
	}
	r2 := openReader(t, s2, desc, bad)
	const half = 4 * 64 << 10
	if got := readAll(t, r2, half, 64<<10); bytes.Equal(got, good.data[:half]) {
		t.Fatal("the corrupting source served the right bytes: the test needs wrong ones")
	}

	if got, err := readAllErr(r1, int(desc.Size), 64<<10); err != nil || !bytes.Equal(got, good.data) {
		t.Fatalf("first store's read: %v", err)
	}
	waitComplete(t, s1, desc)

	buf := make([]byte, 64<<10)
	var err error
	for off := int64(half); off < desc.Size && err == nil; off += int64(len(buf)) {
		_, err = r2.ReadAt(context.Background(), buf, off)
	}
	if !errors.Is(err, ErrBlobNotVerified) {
		t.Fatalf("the second store's reader read on to the end: %v; want ErrBlobNotVerified, since it was served bytes the commit did not vouch for", err)
	}
	// A fresh reader gets the committed bytes.
	if got, err := readAllErr(openReader(t, s2, desc, bad), int(desc.Size), 64<<10); err != nil || !bytes.Equal(got, good.data) {
		t.Fatalf("a fresh reader after the commit: %v", err)
	}
}
