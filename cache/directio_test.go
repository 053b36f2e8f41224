package cache

import (
	"bytes"

	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"unsafe"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// residentBytes returns how much of the file at path is in the page cache.
func residentBytes(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	page := os.Getpagesize()
	vec := make([]byte, (len(mem)+page-1)/page)
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&mem[0])), uintptr(len(mem)), uintptr(unsafe.Pointer(&vec[0])))
	if errno != 0 {
		t.Fatal(errno)
	}
	var n int64
	for _, v := range vec {
		n += int64(v & 1)
	}
	return n * int64(page)
}

// coldRead reads desc from start to end through a fresh reader and waits
// for its commit.
func coldRead(t *testing.T, s *Store, desc blobUnderTest) {
	t.Helper()
	r, err := s.NewReader(desc.desc, desc.f)
	if err != nil {
		t.Fatal(err)
	}
	got := readAll(t, r, int(desc.desc.Size), 64<<10)
	r.Close()
	if !bytes.Equal(got, desc.f.data) {
		t.Fatal("wrong bytes")
	}
	waitComplete(t, s, desc.desc)
}

type blobUnderTest struct {
	desc ocispec.Descriptor
	f    *memFetcher
}

func newBlobUnderTest(t *testing.T, size int) blobUnderTest {
	desc, f := testBlob(t, size)
	return blobUnderTest{desc, f}
}

func TestColdReadLeavesNoCopyInThePageCache(t *testing.T) {
	s := testStore(t, Options{})
	// 8 chunks of 64 KiB and a short one, which is not block-aligned and
	// so goes through the page cache.
	b := newBlobUnderTest(t, 8<<16+1000)
	coldRead(t, s, b)
	path, ok := s.CompletePath(b.desc)
	if !ok {
		t.Fatal("not committed")
	}
	if got := residentBytes(t, path); got > 64<<10 {
		t.Errorf("%d bytes of the cache file are in the page cache after a cold read; want at most the short last chunk: the reads should be served from the landed buffers and the chunks written with O_DIRECT", got)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRefusedODirectFallsBackToThePageCache(t *testing.T) {
	orig := openDirect
	t.Cleanup(func() { openDirect = orig })
	openDirect = func(path string) (*os.File, error) {
		return nil, &os.PathError{Op: "open", Path: path, Err: unix.EINVAL}
	}
	var logs syncBuffer
	s := testStore(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})

	for _, size := range []int{8 << 16, 5<<16 + 1000} {
		b := newBlobUnderTest(t, size)
		coldRead(t, s, b)
		path, _ := s.CompletePath(b.desc)
		if got := residentBytes(t, path); got < int64(size)/2 {
			t.Errorf("only %d of %d bytes are in the page cache: the fallback should write through it", got, size)
		}
	}
	if n := strings.Count(logs.String(), "refuses O_DIRECT"); n != 1 || !strings.Contains(logs.String(), "level=DEBUG") {
		t.Errorf("the refusal was logged %d times, want once at debug level:\n%s", n, logs.String())
	}

	// The trust guarantees hold on this path too: a corrupt source fails
	// the read of the last byte, and nothing is committed.
	b := newBlobUnderTest(t, 4<<16)
	b.f.corruptN.Store(1)
	r, _ := s.NewReader(b.desc, b.f)
	defer r.Close()
	if _, err := readAllErr(r, int(b.desc.Size), 64<<10); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("read of a corrupt blob to its end: %v, want a digest mismatch", err)
	}
	if s.Exists(b.desc) {
		t.Error("a corrupt blob was committed")
	}
}
