package cache

import (
	"sync"

	"github.com/imgfs/imgfs/internal/byterange"
)

// lendHeld lends [r.Start, r.End) out of held, the referenced buffers of
// the chunks r touches in order (coverLocked), for Reader.ReadLend: the
// references stand until giveBack, so the pool does not hand the buffers
// out again while the slices are in use.
func (b *Blob) lendHeld(held []*chunkBuf, r byterange.Range) (slices [][]byte, giveBack func()) {
	return b.heldSlices(held, r), sync.OnceFunc(func() { b.releaseHeld(held...) })
}
