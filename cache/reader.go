package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache/internal/blobfsm"
	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/byterange"
	"github.com/imgfs/imgfs/internal/errdefs"
)

// Reader reads a Blob for one open file handle. It watches the handle's
// offsets: a sequential reader gets a readahead window that doubles with
// each sequential read up to Options.Readahead, fetched as parallel range
// requests; a random reader gets only the chunks it touches.
type Reader struct {
	blob   *Blob
	closed atomic.Bool

	// The access pattern, guarded by blob.mu, which every read of a
	// partial blob takes anyway.
	next    int64 // where a sequential reader reads next
	window  int64 // current readahead window, 0 when random
	aheadTo int64 // readahead already requested up to here

	// unverified: never wait for the verdict, and no readahead (see
	// RangeReader).
	unverified bool
	// exact: fetch exactly the missing bytes each read asks for
	// (NewExactRangeReader).
	exact bool

	// stream: the reader reads the blob once, in order, and its readahead
	// is streamAheadLocked's (see NewStreamReader).
	stream bool

	// served is what the reader has been served (reader_vouch.go),
	// guarded by blob.mu; tracked is set once it holds unverified bytes,
	// so that reads of a complete blob skip it, and the lock, otherwise.
	served  servedRecord
	tracked atomic.Bool
}

// NewReader opens a reader of desc, fetching missing bytes through f (nil
// for offline). Close releases it.
func (s *Store) NewReader(desc ocispec.Descriptor, f blobio.Fetcher) (*Reader, error) {
	b, err := s.OpenBlob(desc, f)
	if err != nil {
		return nil, err
	}
	return &Reader{blob: b}, nil
}

// Close releases the reader's hold on the blob. Closing twice is harmless.
func (r *Reader) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	return r.blob.Close()
}

// ReadAt fills p from off. It returns len(p) bytes, fewer only at the end of
// the blob, or an error; never a short read mid-blob. A read that includes
// the blob's last byte (with VerifyStrict, every read) is answered only
// once the whole blob is verified, and fails with an error wrapping
// errdefs.ErrDigestMismatch if it is not. A wait that makes no progress for the
// fetch timeout fails with errdefs.ErrFetchTimeout.
func (r *Reader) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	_, _, n, err := r.read(ctx, p, off, false)
	return n, err
}

// ReadLend is ReadAt that lends rather than copies where it can: when the
// bytes are in chunk buffers the blob still holds (heldbufs.go), it
// returns them, in order, as slices of those buffers, and leaves p
// untouched. A mount replies with them directly, so a cold read's bytes
// are not copied once more on their way to the kernel. The slices must
// not be written to, and their buffers are not reused until giveBack is
// called, which the caller must do when it is done with them (later calls
// do nothing). A read that does not lend returns nil slices and a nil
// giveBack, with p filled as by ReadAt.
func (r *Reader) ReadLend(ctx context.Context, p []byte, off int64) (lent [][]byte, giveBack func(), n int, err error) {
	return r.read(ctx, p, off, true)
}

func (r *Reader) read(ctx context.Context, p []byte, off int64, lend bool) ([][]byte, func(), int, error) {
	b := r.blob
	size := b.desc.Size
	if off < 0 {
		return nil, nil, 0, fmt.Errorf("read %s: negative offset %d", b.desc.Digest, off)
	}
	if off >= size {
		return nil, nil, 0, io.EOF
	}
	end := min(off+int64(len(p)), size)
	var n int
	var err error
	var lent [][]byte
	var giveBack func()
	if f := b.done.Load(); f != nil {
		// Complete: read straight from the committed file, no bookkeeping
		// beyond what the last byte owes to bytes served before.
		if r.tracked.Load() {
			err = r.serveComplete(byterange.Range{Start: off, End: end})
		}
		if err == nil {
			n, err = f.ReadAt(p[:end-off], off)
		}
	} else {
		var df *dataFile
		var held []*chunkBuf
		df, held, err = b.awaitRead(ctx, r, byterange.Range{Start: off, End: end})
		if err == nil {
			if lend && held != nil {
				lent, giveBack = b.lendHeld(held, byterange.Range{Start: off, End: end})
				n = int(end - off)
			} else {
				n, err = b.readServed(df, held, p[:end-off], off)
			}
			df.release()
		}
	}
	if err == io.EOF && int64(n) == end-off {
		err = nil
	}
	if err != nil {
		return nil, nil, 0, fmt.Errorf("read %s at %d: %w", b.desc.Digest, off, err)
	}
	if end < off+int64(len(p)) {
		return lent, giveBack, n, io.EOF
	}
	return lent, giveBack, n, nil
}

// readServed reads p at off, as awaitRead returned it: from the held
// buffers if there are any, which it releases, otherwise from the file.
func (b *Blob) readServed(df *dataFile, held []*chunkBuf, p []byte, off int64) (int, error) {
	if held == nil {
		b.store.hooks.onFileRead()
		return df.f.ReadAt(p, off)
	}
	n := 0
	for _, s := range b.heldSlices(held, byterange.Range{Start: off, End: off + int64(len(p))}) {
		n += copy(p[n:], s)
	}
	b.releaseHeld(held...)
	return n, nil
}

// serveLocked records that want is being served to the reader and, for a
// read that waits for the verdict, fails it with ErrBlobNotVerified if the
// verdict does not cover bytes the reader was served before. blob.mu must
// be held.
func (r *Reader) serveLocked(want byterange.Range, needVerdict bool) error {
	b := r.blob
	if r.unverified { // a RangeReader's caller checks what it reads
		return nil
	}
	r.served.served(b.m.Epoch(), want, b.m.Verified())
	if r.served.tracking() {
		r.tracked.Store(true)
	}
	vouched := r.served.vouched()
	if needVerdict && !vouched {
		return fmt.Errorf("blob %s: %w: bytes this reader was served earlier were dropped or set aside unverified since (they failed verification, or another process committed the blob); read them again", b.desc.Digest, ErrBlobNotVerified)
	}
	if vouched && b.m.Verified() {
		// The verdict covers all the reader has had, and a verified blob
		// is never dropped or set aside: nothing is left to track.
		r.served = servedRecord{}
		r.tracked.Store(false)
	}
	return nil
}

// serveComplete is serveLocked for a read of the committed blob by a
// reader that was served unverified bytes before.
func (r *Reader) serveComplete(want byterange.Range) error {
	r.blob.mu.Lock()
	defer r.blob.mu.Unlock()
	return r.serveLocked(want, want.End == r.blob.desc.Size)
}

// retryPause spaces a read's fresh attempts after a failed fetch.
const retryPause = 100 * time.Millisecond

// awaitRead waits until want can be served, scheduling what is missing
// (and ahead of it, best effort), and returns the file to read it from,
// with a reference the caller releases, and, if all of its chunks are
// held, their buffers, with references that readServed or a lent read's
// giveBack releases. They and the check that the bytes are there are
// taken together under the lock, so a read never lands in a file or a
// buffer that a mismatch has since replaced.
//
// A failed fetch is tried afresh after a pause, while the wait has time
// left; the wait ends after the fetch timeout without progress: for a
// range, bytes of it landing; for a verdict, any chunk landing or hashing
// moving on, so a big blob on a slow link is fine while bytes flow.
func (b *Blob) awaitRead(ctx context.Context, r *Reader, want byterange.Range) (*dataFile, []*chunkBuf, error) {
	s := b.store
	needVerdict := !r.unverified && (s.opts.Verify == VerifyStrict || want.End == b.desc.Size)
	b.mu.Lock()
	var ahead byterange.Range
	plan := readPlan
	switch {
	case r.stream:
		ahead, plan = r.streamAheadLocked(want.Start, want.End), streamPlan
	case r.exact:
		plan = exactPlan
	case !r.unverified: // a RangeReader's caller asks for exactly what it needs
		ahead, plan = r.readaheadLocked(want.Start, want.End)
	}
	gen, failures := b.m.Gen(), b.m.Failures()
	progress := b.waitProgressLocked(want, needVerdict)
	var idle *time.Timer // started on the first wait: most reads never wait
	defer func() {
		if idle != nil {
			idle.Stop()
		}
	}()
	for {
		ready := b.m.Verified() || !needVerdict && b.m.Holds(want)
		if b.m.Gen() != gen {
			source := fetcherName(b.fetcher)
			b.mu.Unlock()
			return nil, nil, fmt.Errorf("blob %s from %s: %w; its bytes were dropped", b.desc.Digest, source, errdefs.ErrDigestMismatch)
		}
		if ready {
			if err := r.serveLocked(want, needVerdict); err != nil {
				b.mu.Unlock()
				return nil, nil, err
			}
			if ahead.Len() > 0 {
				_ = b.wantLocked(ahead, plan) // best effort
			}
			df, held := b.file.acquire(), b.coverLocked(want)
			b.mu.Unlock()
			return df, held, nil
		}
		if b.adoptCommittedLocked() {
			continue
		}
		err := b.m.FailFast(b.store.now())
		if err == nil && s.closing() {
			err = ErrClosed
		}
		if err == nil && b.m.Failures() != failures {
			failures = b.m.Failures()
			if errors.Is(b.m.LastErr(), errdefs.ErrOffline) || errors.Is(b.m.LastErr(), errdefs.ErrRangeUnsupported) {
				err = b.m.LastErr() // retrying cannot help
			} else if err = b.pauseLocked(ctx, idle); err == nil {
				ahead = byterange.Range{} // retries are for this read alone
				continue
			}
		}
		if err == nil {
			err = b.scheduleLocked(want, ahead, plan, needVerdict)
			ahead = byterange.Range{}
		}
		if err != nil {
			b.mu.Unlock()
			return nil, nil, err
		}
		changed := b.changed
		b.mu.Unlock()
		if idle == nil {
			idle = time.NewTimer(s.opts.FetchTimeout)
		}
		select {
		case <-changed:
		case <-s.life.Done():
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("blob %s: %w", b.desc.Digest, ctx.Err())
		case <-idle.C:
			return nil, nil, b.timeoutError()
		}
		b.mu.Lock()
		if p := b.waitProgressLocked(want, needVerdict); p != progress {
			progress = p
			idle.Reset(s.opts.FetchTimeout)
		}
	}
}

// scheduleLocked asks for the read's bytes and what is ahead of them, cut
// into runs by plan, and for a read waiting on the verdict, for the whole
// blob too, bounded like a fill. The caller has just found no committed
// blob to adopt (adoptCommittedLocked) without letting go of b.mu, so
// the requests do not look again. b.mu must be held.
func (b *Blob) scheduleLocked(want, ahead byterange.Range, plan blobfsm.Plan, needVerdict bool) error {
	var err error
	if ahead.Len() > 0 && ahead.Start <= want.End {
		// One pass over the read and what follows makes the longest runs,
		// so the read's chunk leads a multi-chunk request.
		err = b.requestLocked(byterange.Range{Start: want.Start, End: ahead.End}, plan)
	} else {
		err = b.requestLocked(want, plan)
		if err == nil && ahead.Len() > 0 {
			_ = b.requestLocked(ahead, plan) // best effort
		}
	}
	if err == nil && needVerdict {
		err = b.requestLocked(byterange.Range{Start: 0, End: b.desc.Size}, b.store.bulkPlan(false))
	}
	return err
}

// waitProgressLocked measures what a waiting read counts as progress.
func (b *Blob) waitProgressLocked(want byterange.Range, needVerdict bool) uint64 {
	if needVerdict {
		return b.m.Progress()
	}
	return uint64(want.Len() - b.m.MissingBytes(want))
}

// pauseLocked waits retryPause before a retry, unlocking meanwhile.
func (b *Blob) pauseLocked(ctx context.Context, idle *time.Timer) error {
	b.mu.Unlock()
	defer b.mu.Lock()
	var deadline <-chan time.Time
	if idle != nil {
		deadline = idle.C
	}
	pause := time.NewTimer(retryPause)
	defer pause.Stop()
	select {
	case <-pause.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("blob %s: %w", b.desc.Digest, ctx.Err())
	case <-deadline:
		return b.timeoutError()
	}
}

func (b *Blob) timeoutError() error {
	b.mu.Lock()
	last := b.m.LastErr()
	b.mu.Unlock()
	err := fmt.Errorf("blob %s: %w: no progress for %s", b.desc.Digest, errdefs.ErrFetchTimeout, b.store.opts.FetchTimeout)
	if last != nil && !errors.Is(last, errdefs.ErrFetchTimeout) {
		err = fmt.Errorf("%w (last error: %v)", err, last)
	}
	return err
}

// streamAheadChunks is how far a stream runs ahead of its reader. With no
// request to pay for each top-up, it need only cover the link's latency,
// and it stays within the held buffers, so that reads find the chunks
// they wait for still in memory (heldbufs.go).
const streamAheadChunks = 16

// readaheadLocked updates the access pattern with a read of [off, end)
// and returns the range to fetch ahead of it, if any, and the plan to
// fetch it with. Reads that land near the previous end count as
// sequential: the kernel issues readahead READs concurrently, so they
// arrive slightly out of order. b.mu must be held.
func (r *Reader) readaheadLocked(off, end int64) (byterange.Range, blobfsm.Plan) {
	opts := r.blob.store.opts
	// A read continues the stream if it starts at or just past the
	// frontier, or anywhere in what was already fetched ahead: the
	// kernel's readahead sends several READs at once and they arrive in
	// any order. Stragglers behind the frontier change nothing.
	back := max(r.window, 2*opts.ChunkSize)
	forward := max(r.aheadTo, r.next+(end-off))
	switch {
	case r.next > 0 && off >= r.next-back && end <= r.next:
		return byterange.Range{}, readPlan
	case r.next > 0 && off >= r.next-back && off <= forward:
		r.next = end // the frontier moves on: widen the window
		r.window = min(max(2*r.window, 4*opts.ChunkSize), opts.Readahead)
	default:
		r.next, r.window, r.aheadTo = end, 0, 0
		return byterange.Range{}, readPlan
	}
	// A reader at the full window reads on: a stream serves it, which
	// each read tops up at no cost. Before that, topping up in large
	// steps keeps requests large instead of one chunk per read.
	plan, window := readPlan, r.window
	if r.window == opts.Readahead {
		plan, window = readStreamPlan, min(window, streamAheadChunks*opts.ChunkSize)
	} else if r.aheadTo-r.next > r.window/2 {
		return byterange.Range{}, plan // enough is on its way
	}
	from := max(r.next, r.aheadTo)
	to := min(r.next+window, r.blob.desc.Size)
	if from >= to {
		return byterange.Range{}, plan
	}
	r.aheadTo = to
	return byterange.Range{Start: from, End: to}, plan
}

// AwaitCommit waits until the blob r reads, already verified, is committed
// to blobs/, and returns nil then. It returns an error at once when the
// blob is not verified (ErrBlobNotVerified), and when the commit fails or
// ctx ends. Callers that store something derived from the blob's bytes use
// it to store only what a committed blob backs, without waiting on the
// commit's fsync in the read that needed the verdict.
func (r *Reader) AwaitCommit(ctx context.Context) error {
	b := r.blob
	b.mu.Lock()
	for {
		switch b.m.Phase() {
		case blobfsm.PhaseComplete:
			b.mu.Unlock()
			return nil
		case blobfsm.PhaseCommitFailed:
			err := b.m.CommitErr()
			b.mu.Unlock()
			return err
		case blobfsm.PhaseCommitting:
		default:
			b.mu.Unlock()
			return fmt.Errorf("blob %s: %w", b.desc.Digest, ErrBlobNotVerified)
		}
		changed := b.changed
		b.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("blob %s: waiting for the commit: %w", b.desc.Digest, ctx.Err())
		}
		b.mu.Lock()
	}
}
