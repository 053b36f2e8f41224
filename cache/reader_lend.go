package cache

import "sync"

// lendHeld lends [r.Start, r.End) out of held, the referenced buffers of
// the chunks r touches in order (coverLocked), for Reader.ReadLend: the
// references stand until giveBack, so the pool does not hand the buffers
// out again while the slices are in use.
func (b *Blob) lendHeld(held []*chunkBuf, r Range) (slices [][]byte, giveBack func()) {
	cs := b.store.opts.ChunkSize
	slices = make([][]byte, 0, len(held))
	off := r.Start
	for _, cb := range held {
		in := off % cs
		k := min(int64(len(*cb.p))-in, r.End-off)
		slices = append(slices, (*cb.p)[in:in+k])
		off += k
	}
	return slices, sync.OnceFunc(func() { b.releaseHeld(held...) })
}
