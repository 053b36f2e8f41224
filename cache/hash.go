package cache

import (
	"encoding"
	"fmt"
	"hash"
)

// hashLoop feeds the generation's hasher the present prefix it has not
// seen, from the landed chunks' buffers when they are still in memory and
// otherwise reading back from the page cache, so that at completion only
// the tail is left to hash: verification costs no second pass over the
// disk. The machine runs one hashLoop per generation at a time, at low
// priority, so verification takes the CPU that reads leave.
func (b *Blob) hashLoop(gen uint64, h hash.Hash, df *dataFile, from, to int64) {
	defer df.release()
	lowerPriority()
	cs := b.store.opts.ChunkSize
	buf := getChunkBuf(cs)
	defer chunkPool.Put(buf)
	for {
		for off := from; off < to; {
			chunk := Range{off / cs * cs, min(off/cs*cs+cs, b.desc.Size)}
			b.mu.Lock()
			kept, ok := b.unhashed[chunk.Start]
			if ok && b.m.gen == gen {
				delete(b.unhashed, chunk.Start)
			} else {
				ok = false
			}
			b.mu.Unlock()
			if ok && off == chunk.Start {
				h.Write(*kept)
				chunkPool.Put(kept)
				off = chunk.End
				continue
			}
			if ok {
				chunkPool.Put(kept)
			}
			n := min(chunk.End, to) - off
			if _, err := df.f.ReadAt((*buf)[:n], off); err != nil {
				b.store.log.Error("hash read failed", "digest", b.desc.Digest, "error", err)
				b.mu.Lock()
				b.applyLocked(b.m.hashStopped(gen, fmt.Errorf("hash %s: %w", b.desc.Digest, err)))
				b.mu.Unlock()
				return
			}
			h.Write((*buf)[:n])
			off += n
		}
		var state []byte
		if m, ok := h.(encoding.BinaryMarshaler); ok {
			state, _ = m.MarshalBinary()
		}
		b.mu.Lock()
		if b.m.gen == gen {
			b.hashState = state
		}
		a := b.m.hashed(gen, to)
		next := a
		a.hash = false // this loop is the hasher: it goes on itself
		b.applyLocked(a)
		b.mu.Unlock()
		if !next.hash {
			return
		}
		if next.hashFinal && next.hashFrom == b.desc.Size {
			b.verdict(gen, h)
			return
		}
		from, to = next.hashFrom, next.hashTo
	}
}

// verdict compares the finished digest with the descriptor's.
func (b *Blob) verdict(gen uint64, h hash.Hash) {
	got := digestOf(b.desc.Digest.Algorithm(), h)
	if got == b.desc.Digest {
		b.mu.Lock()
		b.applyLocked(b.m.matched(gen))
		b.mu.Unlock()
		return
	}
	b.mismatch(gen, got, b.store.now())
}
