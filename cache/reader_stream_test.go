package cache

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/byterange"
)

// fifoLink serves range requests one after another, in the order they were
// made, as a single link would if it did not share itself out: a body
// sends nothing until every earlier body is sent. It records the requests
// and the most that were ever made and not yet wholly sent.
type fifoLink struct {
	data []byte

	mu          sync.Mutex
	requests    []byterange.Range
	turns       []chan struct{} // closed when body i may send
	unsent      int
	maxUnsent   int
	bytesServed int64
}

func (l *fifoLink) Source() string { return "fifo link" }

func (l *fifoLink) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	return l.FetchRange(ctx, desc, 0, int64(len(l.data)))
}

func (l *fifoLink) FetchRange(ctx context.Context, _ ocispec.Descriptor, off, n int64) (io.ReadCloser, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	turn := make(chan struct{})
	if len(l.turns) == 0 || l.unsent == 0 {
		close(turn)
	}
	l.requests = append(l.requests, byterange.Range{Start: off, End: off + n})
	l.turns = append(l.turns, turn)
	l.unsent++
	l.maxUnsent = max(l.maxUnsent, l.unsent)
	return &fifoBody{ctx: ctx, link: l, id: len(l.turns) - 1, r: bytes.NewReader(l.data[off : off+n])}, nil
}

type fifoBody struct {
	ctx  context.Context
	link *fifoLink
	id   int
	r    *bytes.Reader
	done bool
}

func (b *fifoBody) Read(p []byte) (int, error) {
	b.link.mu.Lock()
	turn := b.link.turns[b.id]
	b.link.mu.Unlock()
	select {
	case <-turn:
	case <-b.ctx.Done():
		return 0, b.ctx.Err()
	}
	n, err := b.r.Read(p)
	b.link.mu.Lock()
	b.link.bytesServed += int64(n)
	b.link.mu.Unlock()
	if b.r.Len() == 0 {
		b.finish()
	}
	return n, err
}

func (b *fifoBody) Close() error {
	b.finish()
	return nil
}

// finish hands the link to the next body.
func (b *fifoBody) finish() {
	l := b.link
	l.mu.Lock()
	defer l.mu.Unlock()
	if b.done {
		return
	}
	b.done = true
	l.unsent--
	if next := b.id + 1; next < len(l.turns) {
		close(l.turns[next])
	}
}

// A stream reader asks for the blob in order: run after run, each starting
// where the previous one ends, with at most two runs not yet wholly sent,
// and every byte once.
func TestStreamReaderFetchesInOrder(t *testing.T) {
	const chunk = 64 << 10
	s := testStore(t, Options{ChunkSize: chunk})
	const size = 3*streamRunChunks*chunk + streamRunChunks*chunk/2
	desc, mem := testBlob(t, size)
	link := &fifoLink{data: mem.data}
	r, err := s.NewStreamReader(desc, link)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := readAll(t, r, size, chunk/4); !bytes.Equal(got, mem.data) {
		t.Fatal("wrong bytes")
	}
	waitComplete(t, s, desc)

	link.mu.Lock()
	defer link.mu.Unlock()
	run := int64(streamRunChunks * chunk)
	var want []byterange.Range
	for off := int64(0); off < size; off += run {
		want = append(want, byterange.Range{Start: off, End: min(off+run, size)})
	}
	if len(link.requests) != len(want) {
		t.Fatalf("requests %v, want %v", link.requests, want)
	}
	for i := range want {
		if link.requests[i] != want[i] {
			t.Fatalf("request %d is %v, want %v (all: %v)", i, link.requests[i], want[i], link.requests)
		}
	}
	if link.maxUnsent > 2 {
		t.Errorf("%d requests were in flight at once, want at most 2", link.maxUnsent)
	}
	if link.bytesServed != size {
		t.Errorf("served %d bytes, want %d", link.bytesServed, size)
	}
}
