package blobfsm

import "github.com/imgfs/imgfs/internal/byterange"

// Class says who asked for a run, so each kind can be bounded on its own.
type Class uint8

// The classes of runs.
const (
	ClassRead     Class = iota // a reader's chunks and readahead
	ClassBulk                  // fills and reads waiting for the verdict
	ClassPrefetch              // background prefetch
	// ClassExact is a read through a layer index (a TOC, a chunk, a
	// span): its runs fetch exactly the bytes it asks for that are
	// missing, not whole chunks (exact.go).
	ClassExact
	numClasses
)

// Plan says how Want cuts missing chunks into runs.
type Plan struct {
	Class Class
	// RunChunks is the most chunks one range request covers: small enough
	// that several run in parallel, large enough that per-request latency
	// does not dominate.
	RunChunks int64
	// MaxRuns bounds the runs of this class in flight (0: no bound), so a
	// whole-blob fill costs memory and goroutines by connection, not by
	// the blob's claimed size.
	MaxRuns int
	// Writeback starts writing landed chunks to disk at once. It suits
	// callers that wait for the commit, whose fsync then has little left.
	Writeback bool
	// Stream makes each new run a stream: its request reaches to the end
	// of the missing stretch it starts, but it claims only RunChunks
	// chunks at first, and later wants that reach its next chunk claim
	// more for it instead of sending requests of their own. A sequential
	// reader then costs one request, paced by its readahead.
	Stream bool
}

type runState struct {
	class Class
	// exact: an exact run (exact.go), whose bytes still to land are
	// pending; it has no chunks.
	exact   bool
	pending byterange.Set
	c0, c1  int64 // chunks [c0, c1) claimed so far
	left    int   // chunks not yet landed
	// A stream run's request covers chunks [c0, end); it stays open, with
	// nothing left to land, until StreamEnded. Other runs have end == c1.
	end    int64
	stream bool
}

// Run is one range request to make: chunks [C0, End) of generation
// Gen, of which [C0, C1) are claimed; a stream run lands the rest only as
// it claims them. ID and Gen name the run in the events that report on
// it.
//
// An exact run (Exact, see exact.go) has no chunks: it requests Bytes and
// writes and lands only Own, the bytes of it that were missing and in no
// other run's flight; the rest of Bytes is read and dropped.
type Run struct {
	ID          uint64
	Gen         uint64
	C0, C1, End int64
	Writeback   bool // from the Plan
	Stream      bool // from the Plan

	Exact bool
	Bytes byterange.Range
	Own   []byterange.Range
}
