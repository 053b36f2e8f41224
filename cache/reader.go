package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Reader reads a Blob for one open file handle. It watches the handle's
// offsets: a sequential reader gets a readahead window that doubles with
// each sequential read up to Options.Readahead, fetched as parallel range
// requests; a random reader gets only the chunks it touches.
type Reader struct {
	blob *Blob

	mu      sync.Mutex
	next    int64 // where a sequential reader reads next
	window  int64 // current readahead window, 0 when random
	aheadTo int64 // readahead already requested up to here
}

// NewReader opens a reader of desc, fetching missing bytes through f (nil
// for offline). Close releases it.
func (s *Store) NewReader(desc ocispec.Descriptor, f Fetcher) (*Reader, error) {
	b, err := s.OpenBlob(desc, f)
	if err != nil {
		return nil, err
	}
	return &Reader{blob: b}, nil
}

// Close releases the reader's hold on the blob.
func (r *Reader) Close() error { return r.blob.Close() }

// ReadAt fills p from off. It returns len(p) bytes, fewer only at the end of
// the blob, or an error within the fetch timeout; never a short read
// mid-blob.
func (r *Reader) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	b := r.blob
	size := b.desc.Size
	if off >= size {
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), size)
	var err error
	if !b.Complete() {
		// Only a partial blob needs the access pattern and the fetch
		// bookkeeping; a complete one is read straight from its file.
		err = r.fetch(ctx, Range{off, end}, r.readahead(off, end))
	}
	var n int
	if err == nil {
		n, err = b.file.ReadAt(p[:end-off], off)
		if err == io.EOF && int64(n) == end-off {
			err = nil
		}
	}
	if err != nil {
		return 0, fmt.Errorf("read %s at %d: %w", b.desc.Digest, off, err)
	}
	if end < off+int64(len(p)) {
		return n, io.EOF
	}
	return n, nil
}

// retryPause spaces a read's fresh attempts after a failed fetch.
const retryPause = 100 * time.Millisecond

// fetch makes sure want is present, scheduling what is missing (and ahead,
// best effort), and waits for it. A fetch that fails while the read still
// has time left is tried afresh, so a read that joined a fetch doomed by an
// outage succeeds once the registry is back, within the one fetch timeout.
func (r *Reader) fetch(ctx context.Context, want, ahead Range) error {
	b := r.blob
	var deadline <-chan time.Time // started on the first wait: most reads never wait
	for {
		b.mu.Lock()
		var err error
		if ahead.Len() > 0 && ahead.Start <= want.End {
			// One pass over the read and what follows it makes the
			// longest runs, so the read's chunk leads a multi-chunk request.
			err = b.scheduleLocked(Range{want.Start, ahead.End}, readPlan)
		} else {
			err = b.scheduleLocked(want, readPlan)
			if ahead.Len() > 0 {
				b.scheduleLocked(ahead, readPlan) // best effort
			}
		}
		waits := b.flightsLocked(want)
		b.mu.Unlock()
		if err != nil || len(waits) == 0 {
			return err
		}
		if deadline == nil {
			timer := time.NewTimer(b.store.opts.FetchTimeout)
			defer timer.Stop()
			deadline = timer.C
		}
		err = b.wait(ctx, waits, deadline)
		if !errors.Is(err, errFetchFailed) || b.store.life.Err() != nil {
			return err // done, or the store is closing: no retry
		}
		ahead = Range{} // retries are for this read alone
		select {
		case <-time.After(retryPause):
		case <-deadline:
			return err
		case <-ctx.Done():
			return fmt.Errorf("read %s: %w", b.desc.Digest, ctx.Err())
		}
	}
}

// readahead updates the access pattern with a read of [off, end) and
// returns the range to fetch ahead of it, if any. Reads that land near the
// previous end count as sequential: the kernel issues readahead READs
// concurrently, so they arrive slightly out of order.
func (r *Reader) readahead(off, end int64) Range {
	r.mu.Lock()
	defer r.mu.Unlock()
	opts := r.blob.store.opts
	// A read continues the stream if it starts at or just past the
	// frontier, or anywhere in what was already fetched ahead: the
	// kernel's readahead sends several READs at once and they arrive in
	// any order. Stragglers behind the frontier change nothing.
	back := max(r.window, 2*opts.ChunkSize)
	forward := max(r.aheadTo, r.next+(end-off))
	switch {
	case r.next > 0 && off >= r.next-back && end <= r.next:
		return Range{}
	case r.next > 0 && off >= r.next-back && off <= forward:
		r.next = end // the frontier moves on: widen the window
		r.window = min(max(2*r.window, 4*opts.ChunkSize), opts.Readahead)
	default:
		r.next, r.window, r.aheadTo = end, 0, 0
		return Range{}
	}
	if r.aheadTo-r.next > r.window/2 {
		// Enough is on its way. Topping up in large steps keeps requests
		// large instead of one chunk per read.
		return Range{}
	}
	from := max(r.next, r.aheadTo)
	to := min(r.next+r.window, r.blob.desc.Size)
	if from >= to {
		return Range{}
	}
	r.aheadTo = to
	return Range{from, to}
}
