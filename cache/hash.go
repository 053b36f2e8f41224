package cache

import (
	"encoding"
	"fmt"
	"hash"

	"github.com/imgfs/imgfs/cache/internal/blobfsm"
)

// hashLoop feeds the generation's hasher the present prefix it has not
// seen, from the landed chunks' buffers when they are still in memory and
// otherwise reading back from the file, so that at completion only
// the tail is left to hash: verification costs no second pass over the
// disk. The machine runs one hasher per generation at a time: this loop,
// or hashInline in the fetch that landed the next chunk.
//
// It runs at normal priority. The reader of a blob's last byte waits for
// the verdict, so on a cold sequential read every byte must be hashed
// before the read can end; a hasher that yields to the reads only makes
// that wait longer.
func (b *Blob) hashLoop(gen uint64, h hash.Hash, df *dataFile, from, to int64) {
	defer df.release()
	cs := b.store.opts.ChunkSize
	var buf *[]byte // for reading back, taken only if needed
	defer func() {
		if buf != nil {
			chunkPool.Put(buf)
		}
	}()
	for {
		to = reportBatchEnd(from, to, cs)
		for off := from; off < to; {
			// Where the held chunks end (or off is mid-chunk, when
			// resuming), read back up to the next chunk.
			if off = b.hashHeld(gen, h, off, to); off == to {
				break
			}
			if buf == nil {
				buf = getChunkBuf(cs)
			}
			n := min(off/cs*cs+cs, to) - off
			b.store.hooks.onHashReadBack()
			if _, err := df.f.ReadAt((*buf)[:n], off); err != nil {
				b.store.log.Error("hash read failed", "digest", b.desc.Digest, "error", err)
				b.mu.Lock()
				b.applyLocked(b.m.HashStopped(gen, fmt.Errorf("hash %s: %w", b.desc.Digest, err)))
				b.mu.Unlock()
				return
			}
			b.store.hooks.hashChunk(h, (*buf)[:n])
			off += n
		}
		next, ok := b.reportHashed(gen, h, to)
		if !ok {
			return
		}
		from, to = next.HashFrom, next.HashTo
	}
}

// hashReportChunks is how many chunks a hasher hashes between reports of
// its frontier. Read runs wait while the frontier is maxHeld chunks
// behind them (awaitHasher), so a frontier reported only at the end of a
// long batch would hold them up.
const hashReportChunks = 4

// reportBatchEnd cuts a hasher's batch [from, to) at the next report.
func reportBatchEnd(from, to, chunkSize int64) int64 {
	return min(to, from/chunkSize*chunkSize+hashReportChunks*chunkSize)
}

// verdict compares the finished digest with the descriptor's.
func (b *Blob) verdict(gen uint64, h hash.Hash) {
	got := digestOf(b.desc.Digest.Algorithm(), h)
	if got == b.desc.Digest {
		b.mu.Lock()
		b.applyLocked(b.m.Matched(gen))
		b.mu.Unlock()
		return
	}
	b.mismatch(gen, got, b.store.now())
}

// reportHashed tells the machine the digest h covers [0, to). When that
// is the whole blob it gives the verdict. Otherwise it returns the
// machine's next hash action, if ok, which the caller, being the hasher,
// must carry out (or hand to applyLocked).
func (b *Blob) reportHashed(gen uint64, h hash.Hash, to int64) (blobfsm.Actions, bool) {
	var state []byte
	if m, ok := h.(encoding.BinaryMarshaler); ok {
		state, _ = m.MarshalBinary()
	}
	b.mu.Lock()
	if b.m.Gen() == gen {
		b.hashState = state
	}
	a := b.m.Hashed(gen, to)
	next := blobfsm.Actions{Hash: a.Hash, HashFrom: a.HashFrom, HashTo: a.HashTo, HashFinal: a.HashFinal}
	a.Hash = false // the caller is the hasher: it goes on itself
	b.applyLocked(a)
	b.mu.Unlock()
	if !next.Hash {
		return next, false
	}
	if next.HashFinal && next.HashFrom == b.desc.Size {
		b.verdict(gen, h)
		return next, false
	}
	return next, true
}

// hashHeld feeds h the held chunks from off on, in order, up to to or the
// first chunk that is not held, and returns where it stopped: off itself
// if off is not at a chunk's start.
func (b *Blob) hashHeld(gen uint64, h hash.Hash, off, to int64) int64 {
	for off < to && off%b.store.opts.ChunkSize == 0 {
		held := b.takeHeld(gen, off)
		if held == nil {
			break
		}
		b.store.hooks.hashChunk(h, *held.p)
		off += int64(len(*held.p))
		b.releaseHeld(held)
	}
	return off
}

// hashInline is the hasher run by the fetch that landed the chunk the
// digest needs next: it feeds the digest the held buffers in order, while
// their bytes are still in the CPU's caches, at the fetch's own priority,
// so that verification keeps pace with the download and the reader of the
// last byte finds little left to hash. Where the next chunk's buffer was
// not held it hands over to the background hashLoop, which reads back.
func (b *Blob) hashInline(gen uint64, h hash.Hash, from, to int64) {
	cs := b.store.opts.ChunkSize
	for {
		to = reportBatchEnd(from, to, cs)
		off := b.hashHeld(gen, h, from, to)
		next, ok := b.reportHashed(gen, h, off)
		if !ok {
			return
		}
		b.mu.Lock()
		if b.m.Gen() != gen || !b.holdsLocked(next.HashFrom) {
			b.applyLocked(next)
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		from, to = next.HashFrom, next.HashTo
	}
}
