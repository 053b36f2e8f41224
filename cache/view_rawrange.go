package cache

import (
	"context"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
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
// index built from verified bytes (cache/layerview). Anything else must
// read through Reader.
type RangeReader struct {
	r *Reader
}

// NewRangeReader opens a RangeReader of desc, fetching missing bytes
// through f (nil for offline). Close releases it.
func (s *Store) NewRangeReader(desc ocispec.Descriptor, f Fetcher) (*RangeReader, error) {
	r, err := s.NewReader(desc, f)
	if err != nil {
		return nil, err
	}
	r.unverified = true
	return &RangeReader{r: r}, nil
}

// ReadAt fills p from off, as Reader.ReadAt does, except that no read waits
// for the blob's digest, whatever the verify mode: the caller verifies.
func (r *RangeReader) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	return r.r.ReadAt(ctx, p, off)
}

// Close releases the reader's hold on the blob.
func (r *RangeReader) Close() error { return r.r.Close() }
