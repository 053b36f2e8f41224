package layer

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"
)

// DefaultMaxEntries is the most entries one layer's index may hold unless
// SetMaxEntries says otherwise. A layer is written by whoever pushed it,
// and every entry costs the mount memory for as long as the layer's tree
// is served (about 200 bytes in the index, more once the kernel looks at
// it), so the count is capped: 2,097,152 entries is several times what
// the largest real images hold in one layer (a few hundred thousand
// files), and bounds a hostile layer's index to a few hundred MB.
const DefaultMaxEntries = 1 << 21

// maxEntries is the cap in force; see SetMaxEntries.
var maxEntries atomic.Int64

func init() { maxEntries.Store(DefaultMaxEntries) }

// MaxEntries returns the cap on the entries of one layer's index.
func MaxEntries() int { return int(maxEntries.Load()) }

// SetMaxEntries sets the cap on the entries of one layer's index for the
// indexes built, opened or decoded from now on, process-wide; n <= 0
// restores DefaultMaxEntries, and n is held to at most math.MaxInt32 (a
// tree's inodes number entries in 32 bits). A mount sets it once, before it
// serves.
func SetMaxEntries(n int) {
	if n <= 0 {
		n = DefaultMaxEntries
	}
	n = min(n, math.MaxInt32)
	maxEntries.Store(int64(n))
}

// ErrTooManyEntries means a layer holds more entries than MaxEntries. The
// builders and readers stop at the cap, so what a layer costs is bounded
// whatever it holds, and the layer is broken (the errors wrap ErrBroken
// too): it is served not at all rather than in part.
var ErrTooManyEntries = errors.New("too many entries")

// tooManyEntries is the reason an index over the cap is broken, for
// Index.Err: it names the cap and why there is one.
func tooManyEntries(limit int) string {
	return fmt.Sprintf("%v: more than %d, the cap on entries per layer, which bounds the memory a layer's index takes", ErrTooManyEntries, limit)
}

// errTooManyEntries is the error a builder returns at the cap; its text
// is the one Index.Check gives for the index it leaves.
func errTooManyEntries(limit int) error {
	return fmt.Errorf("%w: %w: more than %d, the cap on entries per layer, which bounds the memory a layer's index takes", ErrBroken, ErrTooManyEntries, limit)
}
