package cache

import (
	"sync"

	"github.com/imgfs/imgfs/cache/internal/blobfsm"
	"github.com/imgfs/imgfs/internal/byterange"
)

// A blob holds the buffers of recently landed chunks, up to maxHeld. The
// hasher takes each chunk from its buffer, so it never reads the file
// back while it keeps pace, and reads of a held chunk are served from the
// buffer: with O_DIRECT landing (directio.go) the page cache has no copy.
//
// Rules, all under Blob.mu:
//   - a buffer is held only for the chunk of the current generation that
//     landed in it, whose bytes are those written to the file;
//   - refs counts the blob's hold and each hasher step or read copying
//     from it, and the buffer goes back to chunkPool when it reaches 0,
//     so a buffer is never reused while anyone reads it;
//   - a full set (maxHeld for the blob, maxStoreHeld for the store) lets
//     go of its lowest chunk the digest already covers, and holds no new
//     chunk if there is none; a held chunk the digest has not reached
//     stays until the generation or the blob ends, so the hasher finds
//     it in memory.

// maxHeld bounds the held buffers of one blob (32 MiB at the default
// chunk size). It covers a stream's lead over its reader
// (streamAheadChunks) with room for the hasher to lag behind. It is the
// machine's bound, since runs wait for the hasher at that distance
// (blobfsm.Machine.HashBehind).
// maxStoreHeld bounds those of all blobs of a store together, so that
// memory does not grow with the number of blobs read at once; it matches
// the buffer pool's slots.
const (
	maxHeld      = blobfsm.MaxHeld
	maxStoreHeld = 64
)

type chunkBuf struct {
	p    *[]byte
	refs int
}

// holdLocked keeps buf, in which the chunk at off landed, if it is near
// enough to the hash frontier to be hashed from it and there is room, in
// the blob and in the store, or room can be made by letting go of a chunk
// the digest covers; otherwise it goes back to the pool. b.mu must be
// held.
func (b *Blob) holdLocked(off int64, buf *[]byte) {
	cs := b.store.opts.ChunkSize
	if b.m.Verified() || off >= b.m.HashedTo()+maxHeld*cs {
		chunkPool.Put(buf)
		return
	}
	if len(b.held) >= maxHeld && !b.evictHashedLocked() {
		chunkPool.Put(buf)
		return
	}
	for !b.store.reserveHeld() {
		if !b.evictHashedLocked() {
			chunkPool.Put(buf)
			return
		}
	}
	b.held[off] = &chunkBuf{p: buf, refs: 1}
}

// evictHashedLocked lets go of the blob's lowest held chunk that the
// digest already covers, and reports whether there was one.
func (b *Blob) evictHashedLocked() bool {
	cs := b.store.opts.ChunkSize
	victim := int64(-1)
	for o := range b.held {
		if o+cs <= b.m.HashedTo() && (victim < 0 || o < victim) {
			victim = o
		}
	}
	if victim < 0 {
		return false
	}
	b.unholdLocked(victim)
	return true
}

// reserveHeld takes one of the store's maxStoreHeld places for a held
// buffer, if one is free; unholdLocked gives it back.
func (s *Store) reserveHeld() bool {
	if s.held.Add(1) > maxStoreHeld {
		s.held.Add(-1)
		return false
	}
	return true
}

// unholdLocked lets go of the blob's hold on the buffer at off.
func (b *Blob) unholdLocked(off int64) {
	if cb, ok := b.held[off]; ok {
		delete(b.held, off)
		b.store.held.Add(-1)
		releaseLocked(cb)
	}
}

// dropHeldLocked lets go of every held buffer, when the generation ends.
func (b *Blob) dropHeldLocked() {
	for off := range b.held {
		b.unholdLocked(off)
	}
}

func releaseLocked(cb *chunkBuf) {
	cb.refs--
	if cb.refs == 0 {
		chunkPool.Put(cb.p)
	}
}

// releaseHeld lets go of bufs, taken by heldLocked or coverLocked.
func (b *Blob) releaseHeld(bufs ...*chunkBuf) {
	b.mu.Lock()
	for _, cb := range bufs {
		releaseLocked(cb)
	}
	b.mu.Unlock()
}

// heldLocked returns the held buffer of the chunk at off with a reference
// the caller releases, or nil.
func (b *Blob) heldLocked(off int64) *chunkBuf {
	cb, ok := b.held[off]
	if !ok {
		return nil
	}
	cb.refs++
	return cb
}

// takeHeld returns the held buffer of the chunk at off with a reference
// the caller releases, or nil if there is none or generation gen has
// ended.
func (b *Blob) takeHeld(gen uint64, off int64) *chunkBuf {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m.Gen() != gen {
		return nil
	}
	return b.heldLocked(off)
}

// holdsLocked reports whether the chunk at off is held, so hashing can go
// on from it without reading the file.
func (b *Blob) holdsLocked(off int64) bool {
	_, ok := b.held[off]
	return ok
}

// coverLocked returns the held buffers of every chunk r touches, with
// references the caller releases, or nil unless all of them are held.
func (b *Blob) coverLocked(r byterange.Range) []*chunkBuf {
	cs := b.store.opts.ChunkSize
	first, last := r.Start/cs, (r.End-1)/cs
	for c := first; c <= last; c++ {
		if !b.holdsLocked(c * cs) {
			return nil
		}
	}
	bufs := make([]*chunkBuf, 0, last-first+1)
	for c := first; c <= last; c++ {
		bufs = append(bufs, b.heldLocked(c*cs))
	}
	return bufs
}

// heldSlices returns the bytes of r, in order, as slices of bufs, the
// held buffers of the chunks r touches (coverLocked).
func (b *Blob) heldSlices(bufs []*chunkBuf, r byterange.Range) [][]byte {
	cs := b.store.opts.ChunkSize
	slices := make([][]byte, 0, len(bufs))
	off := r.Start
	for _, cb := range bufs {
		in := off % cs
		k := min(int64(len(*cb.p))-in, r.End-off)
		slices = append(slices, (*cb.p)[in:in+k])
		off += k
	}
	return slices
}

// lendHeld lends [r.Start, r.End) out of held, the referenced buffers of
// the chunks r touches in order (coverLocked), for Reader.ReadLend: the
// references stand until giveBack, so the pool does not hand the buffers
// out again while the slices are in use.
func (b *Blob) lendHeld(held []*chunkBuf, r byterange.Range) (slices [][]byte, giveBack func()) {
	return b.heldSlices(held, r), sync.OnceFunc(func() { b.releaseHeld(held...) })
}
