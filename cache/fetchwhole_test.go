package cache

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// A source that answers every range request with the whole blob, as
// distribution in proxy mode does for a blob it has not cached: the first
// answer fills the cache, reads are served from it, and nothing is asked
// for again.
func TestWholeBlobAnswerFillsTheCache(t *testing.T) {
	s := testStore(t, Options{ChunkSize: 64 << 10})
	desc, f := testBlob(t, 1_000_000)
	f.whole = true
	r, err := s.NewReader(desc, f)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// A read in the middle: its chunk arrives through the whole answer.
	p := make([]byte, 4096)
	if _, err := r.ReadAt(context.Background(), p, 500_000); err != nil || !bytes.Equal(p, f.data[500_000:504_096]) {
		t.Fatalf("read in the middle: %v", err)
	}
	// Reading everything asks for nothing more and commits the blob.
	got := readAll(t, r, int(desc.Size), 64<<10)
	if !bytes.Equal(got, f.data) {
		t.Fatal("bytes differ")
	}
	waitComplete(t, s, desc)
	if n := f.requests.Load(); n != 1 {
		t.Errorf("%d requests, want the one whole answer used for everything", n)
	}
	if n := f.bytes.Load(); n != desc.Size {
		t.Errorf("pulled %d bytes, want the blob once (%d)", n, desc.Size)
	}
}

// A whole answer whose bytes are corrupt is caught by the digest like any
// other fetch, and nothing is committed.
func TestWholeBlobAnswerIsVerified(t *testing.T) {
	s := testStore(t, Options{ChunkSize: 64 << 10})
	desc, f := testBlob(t, 300_000)
	f.whole = true
	f.data = bytes.Clone(f.data)
	f.data[123] ^= 0xff
	r, _ := s.NewReader(desc, f)
	defer r.Close()
	if _, err := readAllErr(r, int(desc.Size), 64<<10); err == nil {
		t.Fatal("read to the end of a corrupt whole answer succeeded")
	}
	if s.Exists(desc) {
		t.Fatal("a corrupt whole answer was committed")
	}
}

// Fill sends several range requests at once, and each gets a whole answer.
// Over a link, where the answers arrive together and streaming takes a
// while, the later ones hand the chunks ahead to the first stream: the blob
// is pulled once, plus at most the chunk that stream was reading when each
// later answer came, not once per request.
func TestWholeBlobAnswersToAFillPullTheBlobOnce(t *testing.T) {
	s := testStore(t, Options{ChunkSize: 64 << 10, MaxConnections: 4})
	desc, f := testBlob(t, 1_000_000)
	f.whole = true
	f.pace = time.Millisecond // 4 KiB a millisecond: about a quarter of a second
	if err := s.Fill(context.Background(), desc, f, nil); err != nil {
		t.Fatal(err)
	}
	if !s.Exists(desc) {
		t.Fatal("not committed")
	}
	requests, pulled := f.requests.Load(), f.bytes.Load()
	if requests < 2 {
		t.Fatalf("%d requests: the test needs several runs in flight", requests)
	}
	if limit := desc.Size + (requests-1)*(64<<10); pulled > limit {
		t.Fatalf("%d requests pulled %d bytes, %.2fx the blob; want at most %d", requests, pulled, float64(pulled)/float64(desc.Size), limit)
	}
}
