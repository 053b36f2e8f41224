package cache

import (
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache/internal/blobfsm"
	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/byterange"
)

// The in-order readahead of a stream reader. Runs in flight share the
// link, so a reader whose consumer needs the bytes in order (an inflater)
// is best served by one run at a time: the bytes it needs next then arrive
// at the link's full rate, not at a share of it.
const (
	// streamRunChunks is the length of each range request of a stream
	// reader: 16 MiB at the default chunk size.
	streamRunChunks = 16
	// streamLeadChunks is how much of what a stream reader asked for may
	// still be landing when it asks for the next run. Asking a little
	// early keeps the link busy across the next request's round trip
	// (4 MiB covers 40 ms at 100 MB/s); asking late keeps two runs from
	// sharing the link for long.
	streamLeadChunks = 4
)

// NewStreamReader opens a reader of desc, like NewReader, for a consumer
// that reads it once from start to end and needs its bytes in that order,
// such as an index pass inflating the blob as it arrives. Its readahead
// asks for the blob run after run, each starting where the previous one
// ends, and for the next only when less than streamLeadChunks of the
// current one are still to land; it runs ahead of a slow consumer at the
// link's pace. Its reads are served and verified like NewReader's.
func (s *Store) NewStreamReader(desc ocispec.Descriptor, f blobio.Fetcher) (*Reader, error) {
	r, err := s.NewReader(desc, f)
	if err != nil {
		return nil, err
	}
	r.stream = true
	return r, nil
}

// streamPlan cuts a stream reader's readahead into its runs.
var streamPlan = blobfsm.Plan{Class: blobfsm.ClassRead, RunChunks: streamRunChunks}

// streamAheadLocked updates a stream reader with a read of [off, end) and
// returns the range to ask for, from off: what it asked for before (chunks
// in flight are not asked for twice, and chunks a failed run left missing
// are asked for again), plus one more run when less than
// streamLeadChunks of that are still to land. b.mu must be held.
func (r *Reader) streamAheadLocked(off, end int64) byterange.Range {
	b := r.blob
	cs := b.store.opts.ChunkSize
	if r.aheadTo < end {
		// Nothing asked for covers the read (the first read, or a seek):
		// the next run starts at its chunk.
		r.aheadTo = off / cs * cs
	}
	landing := b.m.MissingBytes(byterange.Range{Start: off, End: r.aheadTo})
	if landing < streamLeadChunks*cs && r.aheadTo < b.desc.Size {
		r.aheadTo = min(r.aheadTo+streamRunChunks*cs, b.desc.Size)
	}
	return byterange.Range{Start: off, End: r.aheadTo}
}
