package cache

import (
	"bytes"
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imgfs/imgfs/internal/byterange"
)

// TestFillLandsDirectAndHashesFromHeldBuffers fills a blob of more chunks
// than the hasher may fall behind by, with parallel runs and a hasher
// slower than the source. Every chunk is written with O_DIRECT, so the
// committed blob leaves the page cache alone; the runs ahead wait for the
// one landing the chunks past the frontier, so the hasher takes every
// chunk from its buffer and reads none back from the file.
func TestFillLandsDirectAndHashesFromHeldBuffers(t *testing.T) {
	const cs = 64 << 10
	const chunks = 3 * maxHeld
	s := testStore(t, Options{ChunkSize: cs, MaxConnections: 8})
	slowHasher(s, time.Millisecond)
	origWrite := s.hooks.directWrite
	var direct, readBacks atomic.Int64
	s.hooks.directWrite = func(f *os.File, p []byte, off int64) (int, error) {
		n, err := origWrite(f, p, off)
		if err == nil {
			direct.Add(1)
		}
		return n, err
	}
	s.hooks.onHashReadBack = func() { readBacks.Add(1) }

	desc, f := testBlob(t, chunks*cs)
	if err := s.Fill(context.Background(), desc, f, nil); err != nil {
		t.Fatal(err)
	}
	path, ok := s.CompletePath(desc)
	if !ok {
		t.Fatal("the blob was not committed")
	}
	if n := residentBytes(t, path, byterange.Range{Start: 0, End: desc.Size}); n > desc.Size/8 {
		t.Errorf("%d of %d bytes of the filled blob are in the page cache", n, desc.Size)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, f.data) {
		t.Fatalf("the committed blob has the wrong bytes (%v)", err)
	}
	if n := direct.Load(); n != chunks {
		t.Errorf("%d of %d chunks were written with O_DIRECT", n, chunks)
	}
	if n := readBacks.Load(); n != 0 {
		t.Errorf("the hasher read %d chunks back from the file: runs landed more than %d chunks past its frontier", n, maxHeld)
	}
}
