package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/errdefs"
)

// memFetcher serves one blob from memory and counts what it serves. It
// stands in for the registry in unit tests of the cache's bookkeeping; the
// integration tests use the real registry.
type memFetcher struct {
	data      []byte
	corrupt   bool
	corruptN  atomic.Int64  // corrupt this many requests (after corrupt)
	stall     chan struct{} // if not nil, bodies block until it is closed
	noRange   bool
	whole     bool          // answer every range with the whole blob, as a cold pull-through mirror does
	permanent bool          // answer every request like a 404
	pace      time.Duration // if not zero, bodies send 4 KiB at a time, this far apart
	failures  atomic.Int64  // fail this many requests first
	requests  atomic.Int64
	bytes     atomic.Int64
	// cutFrom, if set, cuts every body that reaches this blob offset
	// there with a connection reset, cutN times.
	cutFrom int64
	cutN    atomic.Int64
}

func (m *memFetcher) Source() string { return "memory" }

func (m *memFetcher) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	return m.FetchRange(ctx, desc, 0, int64(len(m.data)))
}

func (m *memFetcher) FetchRange(ctx context.Context, _ ocispec.Descriptor, off, n int64) (io.ReadCloser, error) {
	if m.noRange && (off != 0 || n != int64(len(m.data))) {
		return nil, errdefs.ErrRangeUnsupported
	}
	m.requests.Add(1)
	if m.permanent {
		return nil, fmt.Errorf("%w: 404 blob unknown", errdefs.ErrPermanent)
	}
	if m.failures.Add(-1) >= 0 {
		return nil, errors.New("injected outage")
	}
	if m.whole {
		var r io.Reader = bytes.NewReader(m.data)
		if m.pace > 0 {
			r = &pacedReader{ctx: ctx, pace: m.pace, r: r}
		}
		return nil, &blobio.WholeBlob{Body: io.NopCloser(&countedReader{r: r, n: &m.bytes})}
	}
	body := bytes.Clone(m.data[off : off+n])
	if (m.corrupt || m.corruptN.Add(-1) >= 0) && len(body) > 0 {
		body[0] ^= 0xff
	}
	// Bytes count as pulled when the client reads them: a stream run
	// closes its request before the end when its readers stop.
	var r io.Reader = bytes.NewReader(body)
	if m.cutFrom > off && m.cutFrom < off+n && m.cutN.Add(-1) >= 0 {
		r = io.MultiReader(bytes.NewReader(body[:m.cutFrom-off]), errReader{errors.New("connection reset by peer")})
	}
	switch {
	case m.pace > 0:
		r = &pacedReader{ctx: ctx, pace: m.pace, r: r}
	case m.stall != nil:
		r = &stallReader{ctx: ctx, stall: m.stall, r: r}
	}
	return io.NopCloser(&countedReader{r: r, n: &m.bytes}), nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// countedReader adds what is read from it to n.
type countedReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countedReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(int64(k))
	return k, err
}

type stallReader struct {
	ctx   context.Context
	stall chan struct{}
	r     io.Reader
}

func (s *stallReader) Read(p []byte) (int, error) {
	select {
	case <-s.stall:
		return s.r.Read(p)
	case <-s.ctx.Done():
		return 0, s.ctx.Err()
	}
}

// pacedReader is a slow link: 4 KiB every pace.
type pacedReader struct {
	ctx  context.Context
	pace time.Duration
	r    io.Reader
}

func (p *pacedReader) Read(b []byte) (int, error) {
	select {
	case <-time.After(p.pace):
	case <-p.ctx.Done():
		return 0, p.ctx.Err()
	}
	return p.r.Read(b[:min(len(b), 4096)])
}

func testBlob(t *testing.T, size int) (ocispec.Descriptor, *memFetcher) {
	data := make([]byte, size)
	rng := rand.New(rand.NewPCG(uint64(size), 7))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(data), Size: int64(size)}
	return desc, &memFetcher{data: data}
}

func testStore(t *testing.T, opts Options) *Store {
	return testStoreAt(t, t.TempDir(), opts)
}

// testStoreAt opens a store on root, as one more process sharing that
// cache directory would, and closes it when the test ends.
func testStoreAt(t *testing.T, root string, opts Options) *Store {
	t.Helper()
	if opts.ChunkSize == 0 {
		opts.ChunkSize = 64 << 10
	}
	s, err := Open(root, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openReader opens a reader of desc through f, closed when the test ends.
func openReader(t *testing.T, s *Store, desc ocispec.Descriptor, f blobio.Fetcher) *Reader {
	t.Helper()
	r, err := s.NewReader(desc, f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func readAll(t *testing.T, r *Reader, size, bs int) []byte {
	t.Helper()
	out := make([]byte, 0, size)
	buf := make([]byte, bs)
	for off := 0; off < size; {
		n, err := r.ReadAt(context.Background(), buf, int64(off))
		if err != nil && err != io.EOF {
			t.Fatalf("ReadAt %d: %v", off, err)
		}
		if n != min(bs, size-off) {
			t.Fatalf("ReadAt %d: short read %d", off, n)
		}
		out = append(out, buf[:n]...)
		off += n
	}
	return out
}

// waitComplete waits for the background verification a full read starts.
func waitComplete(t *testing.T, s *Store, desc ocispec.Descriptor) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !s.Exists(desc) {
		if time.Now().After(deadline) {
			t.Fatalf("blob %s never committed", desc.Digest)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitClosed waits for background fetches to let go of every blob, which
// is when their state is saved.
func waitClosed(t *testing.T, s *Store) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().OpenBlobs != 0 {
		if time.Now().After(deadline) {
			t.Fatal("blobs still open")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLazyReadFetchesOnlyTouchedChunks(t *testing.T) {
	s := testStore(t, Options{})
	desc, f := testBlob(t, 1<<20)
	r, err := s.NewReader(desc, f)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, 4096)
	if _, err := r.ReadAt(context.Background(), buf, 300_000); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf, f.data[300_000:300_000+4096]) {
		t.Fatal("wrong bytes")
	}
	if got := f.bytes.Load(); got != 64<<10 {
		t.Fatalf("pulled %d bytes for a 4 KiB read, want one 64 KiB chunk", got)
	}
	// Reading the same bytes again pulls nothing.
	if _, err := r.ReadAt(context.Background(), buf, 300_000); err != nil {
		t.Fatal(err)
	}
	if got := f.requests.Load(); got != 1 {
		t.Fatalf("%d requests, want 1", got)
	}
	if s.Exists(desc) {
		t.Fatal("partial blob committed")
	}
}

func TestFullReadVerifiesAndCommits(t *testing.T) {
	s := testStore(t, Options{})
	size := 1<<20 + 12345 // a short last chunk
	desc, f := testBlob(t, size)
	r, err := s.NewReader(desc, f)
	if err != nil {
		t.Fatal(err)
	}
	// Read backwards so that hashing cannot follow the reads in order.
	buf := make([]byte, 100_000)
	for off := (size - 1) / len(buf) * len(buf); off >= 0; off -= len(buf) {
		n, err := r.ReadAt(context.Background(), buf, int64(off))
		if (err != nil && err != io.EOF) || n != min(len(buf), size-off) {
			t.Fatalf("ReadAt %d = %d, %v", off, n, err)
		}
	}
	waitComplete(t, s, desc)
	r.Close()
	if got := f.bytes.Load(); got != int64(size) {
		t.Fatalf("pulled %d bytes, want each byte once (%d)", got, size)
	}
	path, _ := s.blobPath(desc.Digest)
	data, err := os.ReadFile(path)
	if err != nil || digest.FromBytes(data) != desc.Digest {
		t.Fatalf("committed blob wrong: %v", err)
	}
	// A new reader serves from the committed blob without fetching.
	r2, err := s.NewReader(desc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, r2, size, 1<<16); !bytes.Equal(got, f.data) {
		t.Fatal("committed blob reads back wrong")
	}
	r2.Close()
	// Background work (a state save, say) may hold the blob a moment
	// longer; the last one out cleans ingest/.
	waitClosed(t, s)
	entries, _ := os.ReadDir(s.root + "/ingest")
	if len(entries) != 0 {
		t.Fatalf("ingest/ not cleaned: %v", entries)
	}
}

func TestCorruptBytesAreNeverCommitted(t *testing.T) {
	s := testStore(t, Options{})
	desc, f := testBlob(t, 300_000)
	f.corrupt = true
	err := s.Fill(context.Background(), desc, f, nil)
	if !errors.Is(err, errdefs.ErrDigestMismatch) {
		t.Fatalf("Fill = %v, want errdefs.ErrDigestMismatch", err)
	}
	if s.Exists(desc) {
		t.Fatal("corrupt blob committed")
	}
	if s.Stats().DigestMismatches != 1 {
		t.Fatalf("stats: %+v", s.Stats())
	}
	// Whole-blob ingest checks too.
	body, _ := f.Fetch(context.Background(), desc)
	if err := s.Ingest(context.Background(), desc, body); !errors.Is(err, errdefs.ErrDigestMismatch) {
		t.Fatalf("Ingest = %v, want errdefs.ErrDigestMismatch", err)
	}
	if s.Exists(desc) {
		t.Fatal("corrupt blob committed by Ingest")
	}
}

func TestConcurrentReadersShareOneFetch(t *testing.T) {
	s := testStore(t, Options{})
	desc, f := testBlob(t, 1<<20)
	f.stall = make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.NewReader(desc, f)
			if err != nil {
				t.Error(err)
				return
			}
			defer r.Close()
			buf := make([]byte, 8192)
			if _, err := r.ReadAt(context.Background(), buf, 70_000); err != nil {
				t.Error(err)
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(f.stall)
	wg.Wait()
	if got := f.requests.Load(); got != 1 {
		t.Fatalf("%d requests for one chunk read by 8 readers, want 1", got)
	}
}

func TestStalledFetchFailsWithinTimeout(t *testing.T) {
	s := testStore(t, Options{FetchTimeout: 200 * time.Millisecond})
	desc, f := testBlob(t, 100_000)
	f.stall = make(chan struct{})
	defer close(f.stall)
	r, _ := s.NewReader(desc, f)
	defer r.Close()
	start := time.Now()
	_, err := r.ReadAt(context.Background(), make([]byte, 10), 0)
	if !errors.Is(err, errdefs.ErrFetchTimeout) {
		t.Fatalf("ReadAt = %v, want errdefs.ErrFetchTimeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %s", d)
	}
}

func TestOfflineReadOfMissingBytesFails(t *testing.T) {
	s := testStore(t, Options{})
	desc, _ := testBlob(t, 100_000)
	r, _ := s.NewReader(desc, nil)
	defer r.Close()
	if _, err := r.ReadAt(context.Background(), make([]byte, 10), 0); !errors.Is(err, errdefs.ErrOffline) {
		t.Fatalf("ReadAt = %v, want errdefs.ErrOffline", err)
	}
}

func TestPartialStateSurvivesReopenAndFillCompletesIt(t *testing.T) {
	root := t.TempDir()
	opts := Options{ChunkSize: 64 << 10}
	s, _ := Open(root, opts)
	defer s.Close()
	desc, f := testBlob(t, 1<<20)
	r, _ := s.NewReader(desc, f)
	if _, err := r.ReadAt(context.Background(), make([]byte, 4096), 0); err != nil {
		t.Fatal(err)
	}
	r.Close()
	waitClosed(t, s)

	// A second process (a new Store on the same directory) keeps the chunk.
	s2, _ := Open(root, opts)
	defer s2.Close()
	f2 := &memFetcher{data: f.data}
	r2, _ := s2.NewReader(desc, nil)
	if _, err := r2.ReadAt(context.Background(), make([]byte, 4096), 100); err != nil {
		t.Fatalf("offline read of a saved chunk: %v", err)
	}
	r2.Close()
	var reported int64
	if err := s2.Fill(context.Background(), desc, f2, func(n int64) { reported += n }); err != nil {
		t.Fatal(err)
	}
	if got := f2.bytes.Load(); got != desc.Size-64<<10 {
		t.Fatalf("fill pulled %d bytes, want the %d missing", got, desc.Size-64<<10)
	}
	if reported != desc.Size || !s2.Exists(desc) {
		t.Fatalf("progress %d, exists %v", reported, s2.Exists(desc))
	}
}

func TestFillFallsBackWithoutRanges(t *testing.T) {
	s := testStore(t, Options{})
	desc, f := testBlob(t, 200_000)
	f.noRange = true
	if err := s.Fill(context.Background(), desc, f, nil); err != nil {
		t.Fatal(err)
	}
	if !s.Exists(desc) {
		t.Fatal("not committed")
	}
}

func TestSequentialReadsReadAhead(t *testing.T) {
	s := testStore(t, Options{Readahead: 512 << 10})
	desc, f := testBlob(t, 4<<20)
	r, _ := s.NewReader(desc, f)
	defer r.Close()
	got := readAll(t, r, 1<<20, 128<<10)
	if !bytes.Equal(got, f.data[:1<<20]) {
		t.Fatal("wrong bytes")
	}
	// After 1 MiB of sequential reads some chunks beyond it were fetched
	// ahead, and never more than the window.
	time.Sleep(100 * time.Millisecond)
	pulled := f.bytes.Load()
	if pulled <= 1<<20 || pulled > 1<<20+512<<10 {
		t.Fatalf("pulled %d bytes after reading 1 MiB sequentially", pulled)
	}
}

func TestPrefetchCompletesWhatReadsLeft(t *testing.T) {
	s := testStore(t, Options{})
	desc, f := testBlob(t, 1<<20+100)
	r, _ := s.NewReader(desc, f)
	if _, err := r.ReadAt(context.Background(), make([]byte, 10), 500_000); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if err := s.Prefetch(context.Background(), desc, f); err != nil {
		t.Fatal(err)
	}
	if !s.Exists(desc) {
		t.Fatal("prefetched blob not committed")
	}
	if got := f.bytes.Load(); got != desc.Size {
		t.Fatalf("pulled %d bytes, want each byte once: %d", got, desc.Size)
	}
}

// BenchmarkReadAtPresent measures the per-read cost of the lookup and
// bookkeeping on the lazy path when the bytes are already present: what
// every FUSE READ of a partially cached blob pays before pread.
func BenchmarkReadAtPresent(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	data := make([]byte, 8<<20)
	desc := ocispec.Descriptor{Digest: digest.FromBytes(data), Size: int64(len(data))}
	f := &memFetcher{data: data}
	r, _ := s.NewReader(desc, f)
	defer r.Close()
	buf := make([]byte, 128<<10)
	// Fetch the first half only, so the blob stays partial.
	for off := int64(0); off < 4<<20; off += int64(len(buf)) {
		if _, err := r.ReadAt(context.Background(), buf, off); err != nil {
			b.Fatal(err)
		}
	}
	rr, _ := s.NewReader(desc, f)
	defer rr.Close()
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		off := int64(i*7%32) * int64(len(buf)) // scattered: no readahead
		if _, err := rr.ReadAt(context.Background(), buf, off); err != nil {
			b.Fatal(err)
		}
	}
}

func TestReadRetriesAFailedFetchWithinItsTimeout(t *testing.T) {
	s := testStore(t, Options{FetchTimeout: 5 * time.Second})
	desc, f := testBlob(t, 200_000)
	f.failures.Store(2)
	r, _ := s.NewReader(desc, f)
	defer r.Close()
	buf := make([]byte, 1000)
	if _, err := r.ReadAt(context.Background(), buf, 70_000); err != nil {
		t.Fatalf("read across a short outage: %v", err)
	}
	if !bytes.Equal(buf, f.data[70_000:71_000]) {
		t.Fatal("wrong bytes")
	}
	if got := f.requests.Load(); got != 3 {
		t.Fatalf("%d requests, want 2 failed and 1 good", got)
	}
}

func TestCloseCancelsStalledFetches(t *testing.T) {
	s, err := Open(t.TempDir(), Options{FetchTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	desc, f := testBlob(t, 100_000)
	f.stall = make(chan struct{})
	defer close(f.stall)
	r, _ := s.NewReader(desc, f)
	read := make(chan error, 1)
	go func() {
		_, err := r.ReadAt(context.Background(), make([]byte, 10), 0)
		read <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the fetch start and stall
	start := time.Now()
	s.Close()
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Close took %s with a stalled fetch", d)
	}
	if err := <-read; err == nil {
		t.Fatal("read of a cancelled fetch succeeded")
	}
	r.Close()
}
