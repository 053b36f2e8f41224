package cache

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"unsafe"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/imgfs/imgfs/internal/byterange"
	"github.com/imgfs/imgfs/internal/errdefs"
	"github.com/imgfs/imgfs/internal/testlog"
)

// residentBytes returns how much of [r.Start, r.End) of the file at path
// is in the page cache.
func residentBytes(t *testing.T, path string, r byterange.Range) int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mem, err := unix.Mmap(int(f.Fd()), 0, int(r.End), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	page := int64(os.Getpagesize())
	vec := make([]byte, (r.End+page-1)/page)
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&mem[0])), uintptr(len(mem)), uintptr(unsafe.Pointer(&vec[0])))
	if errno != 0 {
		t.Fatal(errno)
	}
	var n int64
	for i := r.Start / page; i < int64(len(vec)); i++ {
		n += int64(vec[i] & 1)
	}
	return n * page
}

// coldRead reads desc from start to end through a fresh reader and waits
// for its commit.
func coldRead(t *testing.T, s *Store, desc ocispec.Descriptor, f *memFetcher) {
	t.Helper()
	r := openReader(t, s, desc, f)
	if got := readAll(t, r, int(desc.Size), 64<<10); !bytes.Equal(got, f.data) {
		t.Fatal("wrong bytes")
	}
	waitComplete(t, s, desc)
}

func TestColdReadLeavesNoCopyInThePageCache(t *testing.T) {
	const cs = 64 << 10
	// Readahead stays 4 chunks ahead of the reader, so the blob cannot
	// complete before the check.
	s := testStore(t, Options{ChunkSize: cs, Readahead: 4 * cs})
	desc, f := testBlob(t, 16*cs)
	r := openReader(t, s, desc, f)
	// Half the blob, read in order: fetched and written, and served, while
	// the blob is far from complete (a complete blob's reads go to its
	// committed file).
	got := readAll(t, r, 8*cs, cs)
	if !bytes.Equal(got, f.data[:8*cs]) {
		t.Fatal("wrong bytes")
	}
	if n := residentBytes(t, r.blob.partial, byterange.Range{Start: 0, End: 8 * cs}); n != 0 {
		t.Errorf("%d bytes of what was read are in the page cache: the reads should be served from the landed buffers and the chunks written with O_DIRECT", n)
	}
}

func TestRefusedODirectFallsBackToThePageCache(t *testing.T) {
	refuse := &os.PathError{Op: "open", Path: "partial", Err: unix.EINVAL}
	t.Run("at open", func(t *testing.T) {
		testRefusedODirect(t, func(h *hooks) {
			h.openDirect = func(string) (*os.File, error) { return nil, refuse }
		})
	})
	t.Run("at the first write", func(t *testing.T) {
		testRefusedODirect(t, func(h *hooks) {
			h.directWrite = func(*os.File, []byte, int64) (int, error) { return 0, unix.EINVAL }
		})
	})
}

// testRefusedODirect checks the page-cache fallback on a store whose
// hooks refuse has set to refuse O_DIRECT.
func testRefusedODirect(t *testing.T, refuse func(*hooks)) {
	var logs testlog.Buffer
	s := testStore(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	refuse(&s.hooks)

	for _, size := range []int{8 << 16, 5<<16 + 1000} {
		desc, f := testBlob(t, size)
		coldRead(t, s, desc, f)
		path, _ := s.CompletePath(desc)
		if got := residentBytes(t, path, byterange.Range{Start: 0, End: int64(size)}); got < int64(size)/2 {
			t.Errorf("only %d of %d bytes are in the page cache: the fallback should write through it", got, size)
		}
	}
	if n := strings.Count(logs.String(), "refuses O_DIRECT"); n != 1 || !strings.Contains(logs.String(), "level=DEBUG") {
		t.Errorf("the refusal was logged %d times, want once at debug level:\n%s", n, logs.String())
	}

	// A fill (imgfs fetch) falls back the same way.
	desc, f := testBlob(t, 16<<16)
	if err := s.Fill(context.Background(), desc, f, nil); err != nil {
		t.Fatalf("fill: %v", err)
	}
	path, _ := s.CompletePath(desc)
	if got := residentBytes(t, path, byterange.Range{Start: 0, End: desc.Size}); got < desc.Size/2 {
		t.Errorf("only %d of %d bytes of a filled blob are in the page cache: the fallback should write through it", got, desc.Size)
	}

	// The trust guarantees hold on this path too: a corrupt source fails
	// the read of the last byte, and the fill, and nothing is committed.
	desc, f = testBlob(t, 4<<16)
	f.corruptN.Store(1)
	r := openReader(t, s, desc, f)
	if _, err := readAllErr(r, int(desc.Size), 64<<10); !errors.Is(err, errdefs.ErrDigestMismatch) {
		t.Errorf("read of a corrupt blob to its end: %v, want a digest mismatch", err)
	}
	desc, f = testBlob(t, 6<<16)
	f.corrupt = true
	if err := s.Fill(context.Background(), desc, f, nil); !errors.Is(err, errdefs.ErrDigestMismatch) {
		t.Errorf("fill from a corrupt source: %v, want a digest mismatch", err)
	}
	for _, d := range []int{4 << 16, 6 << 16} {
		if desc, _ := testBlob(t, d); s.Exists(desc) {
			t.Errorf("a corrupt blob of %d bytes was committed", d)
		}
	}
}
