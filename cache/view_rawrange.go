package cache

import (
	"context"
	"fmt"
	"io"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache/internal/blobfsm"
	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/byterange"
)

// RangeReader reads raw byte ranges of a blob that may be partial or
// evicted, without waiting for the verdict on the whole blob. It shares the
// blob's chunk machinery with Reader: the same fetches, the same partial
// file, the same fetch timeouts; but it reads no further ahead than asked,
// as its callers (a TOC, a tar header walk, a span) know what they need. Bytes it lands still count only toward
// the blob's own verification, never as verifying it.
//
// A RangeReader's bytes are UNVERIFIED. It exists for layer formats that
// verify what they serve piece by piece on their own: eStargz and
// zstd:chunked chunks against a TOC whose digest comes from the verified
// manifest, and indexed gzip or zstd spans against the span digests of an
// index built from verified bytes (internal/layer). Anything else must
// read through Reader.
type RangeReader struct {
	r *Reader
}

// NewRangeReader opens a RangeReader of desc, fetching missing bytes
// through f (nil for offline), in whole chunks: for callers that walk a
// blob in small steps, such as a tar's headers, whose next read is likely
// in the same chunk. Close releases it.
func (s *Store) NewRangeReader(desc ocispec.Descriptor, f blobio.Fetcher) (*RangeReader, error) {
	r, err := s.NewReader(desc, f)
	if err != nil {
		return nil, err
	}
	r.unverified = true
	return &RangeReader{r: r}, nil
}

// NewExactRangeReader is NewRangeReader for reads through a layer index
// (an eStargz or zstd:chunked TOC and its chunks, indexed gzip or zstd
// spans), which know the compressed range they need: a read fetches
// exactly its bytes that are missing, not the chunks around them, with
// neighbouring pieces of one read coalesced by the rules of
// cache/internal/blobfsm (exact.go).
func (s *Store) NewExactRangeReader(desc ocispec.Descriptor, f blobio.Fetcher) (*RangeReader, error) {
	r, err := s.NewRangeReader(desc, f)
	if err != nil {
		return nil, err
	}
	r.r.exact = true
	return r, nil
}

// ReadAt fills p from off, as Reader.ReadAt does, except that no read waits
// for the blob's digest, whatever the verify mode: the caller verifies.
func (r *RangeReader) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	return r.r.ReadAt(ctx, p, off)
}

// ReadCheckedAt reads all of p from off and hands it to check, which
// verifies it against a digest the caller trusts. When check fails, the
// fetched bytes of the blob are proven bad, so they are dropped as after
// a whole-blob mismatch (a fresh file, the mismatch backoff, OnMismatch
// told) and fetched afresh by a later read, instead of answering every
// read of that range with the same bad bytes until the blob is verified.
// It returns check's error then. A read that cannot fill p returns what
// ReadAt would, without calling check.
func (r *RangeReader) ReadCheckedAt(ctx context.Context, p []byte, off int64, check func([]byte) error) (int, error) {
	b := r.r.blob
	if off < 0 || off+int64(len(p)) > b.desc.Size || b.done.Load() != nil {
		// Short, or complete: the committed file's bytes are the digest's,
		// so a failed check is the caller's to report, not theirs.
		n, err := r.r.ReadAt(ctx, p, off)
		if err != nil {
			return n, err
		}
		return n, check(p)
	}
	df, held, err := b.awaitRead(ctx, r.r, byterange.Range{Start: off, End: off + int64(len(p))})
	if err != nil {
		return 0, fmt.Errorf("read %s at %d: %w", b.desc.Digest, off, err)
	}
	defer df.release()
	n, err := b.readServed(df, held, p, off)
	if n < len(p) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return n, fmt.Errorf("read %s at %d: %w", b.desc.Digest, off, err)
	}
	if err := check(p); err != nil {
		b.reject(df, byterange.Range{Start: off, End: off + int64(len(p))}, err)
		return 0, err
	}
	return n, nil
}

// Close releases the reader's hold on the blob.
func (r *RangeReader) Close() error { return r.r.Close() }

// reject drops the fetched bytes of the generation that df holds, because
// the bytes at bad failed a check (see ReadCheckedAt), the way a
// whole-blob mismatch does (dropGenerationLocked): the fresh file takes
// the partial's place before the new generation starts.
func (b *Blob) reject(df *dataFile, bad byterange.Range, cause error) {
	s := b.store
	b.diskMu.Lock()
	defer b.diskMu.Unlock()
	// Unlike a mismatch, this can race the verdict, so b.mu is held from
	// the check to the swap: a blob that verified meanwhile keeps its file.
	// The swap is rare and costs a create and a rename.
	b.mu.Lock()
	gen, current := b.m.Gen(), b.file == df && !b.m.Verified()
	if !current {
		b.mu.Unlock()
		return // dropped already, or verified since: then the bytes were good
	}
	fresh, err := b.freshFile()
	if err != nil {
		b.mu.Unlock()
		s.log.Error("blob bytes failed a check, and its file cannot be replaced", "digest", b.desc.Digest, "error", err)
		return
	}
	fetched, source := b.dropGenerationLocked(fresh, func() blobfsm.Actions { return b.m.Rejected(gen, s.now()) })
	s.log.Error("blob bytes failed their layer format's digest; its fetched bytes were dropped and will be fetched afresh",
		"digest", b.desc.Digest, "bad", fmt.Sprintf("%d-%d", bad.Start, bad.End-1), "source", source, "ranges", fetched, "error", cause)
	s.notifyMismatch(b.desc.Digest)
}
