package cache

import (
	"bytes"
	"context"
	"hash"
	"sync/atomic"
	"testing"
	"time"
)

func TestStreamServesASequentialReaderAndEndsWhenItStops(t *testing.T) {
	const cs = 64 << 10
	s := testStore(t, Options{ChunkSize: cs, Readahead: 4 * cs})
	s.streamPause = 50 * time.Millisecond
	desc, f := testBlob(t, 64*cs)
	r := openReader(t, s, desc, f)
	read := func(from, to int) {
		t.Helper()
		buf := make([]byte, cs)
		for off := from; off < to; off += cs {
			if _, err := r.ReadAt(context.Background(), buf, int64(off)); err != nil {
				t.Fatalf("read at %d: %v", off, err)
			}
			if !bytes.Equal(buf, f.data[off:off+cs]) {
				t.Fatalf("wrong bytes at %d", off)
			}
		}
	}

	// 32 chunks read one by one: the window grows to the full 4 chunks in
	// a few bounded requests, then one stream serves the rest.
	read(0, 32*cs)
	requests := f.requests.Load()
	if requests > 5 {
		t.Errorf("%d requests for 32 chunks read in order, want a few bounded ones and then one stream", requests)
	}

	// The reader stops: the stream ends at its edge, a window ahead of
	// the reader, and gives its connection back.
	deadline := time.Now().Add(10 * time.Second)
	for len(s.slots) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(s.slots); n > 0 {
		t.Fatalf("%d connections still held after the reader stopped", n)
	}
	if pulled := f.bytes.Load(); pulled > (32+4)*cs {
		t.Errorf("pulled %d bytes for 32 chunks read, more than the 4-chunk window ahead", pulled)
	}

	// It reads on: a new stream from where it stopped, and the blob ends
	// verified.
	read(32*cs, 64*cs)
	if got := f.requests.Load() - requests; got != 1 {
		t.Errorf("%d more requests to read on, want one stream", got)
	}
	waitComplete(t, s, desc)
}

func TestStreamCutMidwayIsResumedAndServesTheRightBytes(t *testing.T) {
	const cs = 64 << 10
	s := testStore(t, Options{ChunkSize: cs, Readahead: 4 * cs})
	desc, f := testBlob(t, 64*cs)
	// Streams start once the window is full, a few chunks in: the cut at
	// chunk 40 falls inside one, mid-chunk.
	f.cutFrom = 40*cs + 1000
	f.cutN.Store(1)
	r := openReader(t, s, desc, f)
	got, err := readAllErr(r, int(desc.Size), cs)
	if err != nil {
		t.Fatalf("read across a cut stream: %v", err)
	}
	if !bytes.Equal(got, f.data) {
		t.Fatal("wrong bytes after the stream was cut")
	}
	if f.cutN.Load() > 0 || s.Stats().FetchErrors != 1 {
		t.Fatalf("the stream was not cut once: %d cuts left, %d fetch errors", f.cutN.Load(), s.Stats().FetchErrors)
	}
	if pulled := f.bytes.Load(); pulled > desc.Size+cs {
		t.Errorf("pulled %d bytes for a %d-byte blob: more than the cut chunk again", pulled, desc.Size)
	}
	if n := f.requests.Load(); n > 8 {
		t.Errorf("%d requests: the cut should cost one more stream, not a request per chunk", n)
	}
	waitComplete(t, s, desc)
}

func TestHeldBuffersAreBoundedAcrossBlobs(t *testing.T) {
	const cs = 64 << 10
	s := testStore(t, Options{ChunkSize: cs, Readahead: 4 * cs})
	// Three blobs read most of the way, none complete: each could hold
	// maxHeld buffers, which together would be more than the store's bound.
	for i := range 3 {
		desc, f := testBlob(t, 48*cs+i)
		r := openReader(t, s, desc, f)
		if got := readAll(t, r, 40*cs, cs); !bytes.Equal(got, f.data[:40*cs]) {
			t.Fatalf("blob %d: wrong bytes", i)
		}
	}
	var sum int
	s.mu.Lock()
	for _, b := range s.blobs {
		b.mu.Lock()
		if len(b.held) > maxHeld {
			t.Errorf("a blob holds %d buffers, more than %d", len(b.held), maxHeld)
		}
		sum += len(b.held)
		b.mu.Unlock()
	}
	s.mu.Unlock()
	if n := s.held.Load(); n != int64(sum) || n > maxStoreHeld || n <= maxHeld {
		t.Errorf("the store counts %d held buffers, the blobs hold %d; want the same, more than one blob's %d and at most %d", n, sum, maxHeld, maxStoreHeld)
	}
}

// readBehindSlowHasher reads a blob of 3*maxHeld chunks in order while
// the hasher takes perChunk for each chunk, checks the bytes and that the
// blob ends verified, and returns how many reads were served from the file
// rather than from held buffers. tune, if not nil, adjusts the store
// before the read.
func readBehindSlowHasher(t *testing.T, perChunk time.Duration, tune func(*Store)) int64 {
	t.Helper()
	const cs = 64 << 10
	s := testStore(t, Options{ChunkSize: cs, Readahead: 16 * cs})
	if tune != nil {
		tune(s)
	}
	slowHasher(s, perChunk)
	var fileReads atomic.Int64
	s.hooks.onFileRead = func() { fileReads.Add(1) }

	desc, f := testBlob(t, 3*maxHeld*cs)
	r := openReader(t, s, desc, f)
	if got := readAll(t, r, int(desc.Size), cs); !bytes.Equal(got, f.data) {
		t.Fatal("wrong bytes")
	}
	waitComplete(t, s, desc)
	return fileReads.Load()
}

// TestStreamWaitsForASlowHasher reads a blob in order while the hasher is
// slower than the fetch: the stream waits for the hasher rather than
// landing chunks too far ahead of it to be held, so every read is served
// from held buffers, none from the file, and the blob ends verified.
func TestStreamWaitsForASlowHasher(t *testing.T) {
	if n := readBehindSlowHasher(t, 2*time.Millisecond, nil); n != 0 {
		t.Errorf("%d reads were served from the file: the stream ran more than %d chunks ahead of the hasher", n, maxHeld)
	}
}

// TestStreamGoesOnWhenTheHasherStalls: a hasher that makes no progress
// for streamPause no longer holds a stream back; the reads go on (from
// the file) at the fetch's pace, and the blob ends verified.
func TestStreamGoesOnWhenTheHasherStalls(t *testing.T) {
	// The frontier moves every hashReportChunks chunks, 80 ms apart: a
	// stall of streamPause each time.
	shortPause := func(s *Store) { s.streamPause = 5 * time.Millisecond }
	if readBehindSlowHasher(t, 20*time.Millisecond, shortPause) == 0 {
		t.Error("no read went to the file: the stream waited for a hasher that had stalled")
	}
}

// slowHasher makes the hasher of s take perChunk for each chunk.
func slowHasher(s *Store, perChunk time.Duration) {
	s.hooks.hashChunk = func(h hash.Hash, p []byte) {
		time.Sleep(perChunk)
		h.Write(p)
	}
}
