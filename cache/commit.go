package cache

import (
	"encoding"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// hashLoop feeds the hasher the present prefix it has not seen yet, reading
// back from the page cache what fetches just wrote, so that at completion
// only the tail is left to hash: verification costs no second pass over the
// disk. Only one hashLoop runs per blob (b.hashing).
func (b *Blob) hashLoop() {
	defer b.store.bg.Done()
	defer b.Close()
	lowerPriority()
	buf := getChunkBuf(b.store.opts.ChunkSize)
	defer chunkPool.Put(buf)
	for {
		b.mu.Lock()
		from, to := b.hashOff, b.present.PrefixEnd()
		if to <= from || b.complete {
			b.hashing = false
			done := !b.complete && from == b.desc.Size
			b.mu.Unlock()
			if done {
				b.commit()
			}
			return
		}
		b.mu.Unlock()
		for off := from; off < to; {
			chunk := b.chunkRange(off / b.store.opts.ChunkSize)
			b.mu.Lock()
			kept, ok := b.unhashed[chunk.Start]
			delete(b.unhashed, chunk.Start)
			b.mu.Unlock()
			if ok {
				b.hasher.Write(*kept)
				chunkPool.Put(kept)
				off = chunk.End
				continue
			}
			n := min(chunk.End, to) - off
			if _, err := b.file.ReadAt((*buf)[:n], off); err != nil {
				b.store.log.Error("hash read failed", "digest", b.desc.Digest, "error", err)
				b.mu.Lock()
				b.hashing = false
				b.mu.Unlock()
				return
			}
			b.hasher.Write((*buf)[:n])
			off += n
		}
		var state []byte
		if m, ok := b.hasher.(encoding.BinaryMarshaler); ok {
			state, _ = m.MarshalBinary()
		}
		b.mu.Lock()
		b.hashOff, b.hashState = to, state
		b.mu.Unlock()
	}
}

// commit checks the digest of a fully present blob and, if it matches,
// renames the file into blobs/. The open file keeps working for readers
// since the inode stays the same. On a mismatch everything fetched is
// dropped, so later reads fetch afresh.
func (b *Blob) commit() {
	s := b.store
	got := digestOf(b.desc.Digest.Algorithm(), b.hasher)
	if got != b.desc.Digest {
		s.stats.digestMismatches.Add(1)
		s.log.Error("blob failed verification; dropping its fetched bytes",
			"digest", b.desc.Digest, "got", got, "error", ErrDigestMismatch)
		b.stateMu.Lock()
		defer b.stateMu.Unlock()
		b.file.Truncate(0)
		b.file.Truncate(b.desc.Size)
		os.Remove(s.ingestPath(b.desc.Digest, ".state"))
		b.mu.Lock()
		b.present = RangeSet{}
		b.hashOff, b.hashState = 0, nil
		b.hasher.Reset()
		b.syncing = false
		b.mismatches++
		b.notifyLocked()
		b.mu.Unlock()
		return
	}
	b.stateMu.Lock()
	defer b.stateMu.Unlock()
	err := b.file.Sync()
	if err == nil {
		err = os.Rename(b.dataPath, s.blobPath(b.desc.Digest))
		if errors.Is(err, fs.ErrNotExist) && s.Exists(b.desc) {
			err = nil // another process sharing the cache committed it first
		}
	}
	if err != nil {
		// The bytes are all present and verified; they keep being served
		// from ingest/ and the commit is retried by the next open.
		s.log.Error("commit failed", "digest", b.desc.Digest, "error", fmt.Errorf("commit %s: %w", b.desc.Digest, err))
		return
	}
	os.Remove(s.ingestPath(b.desc.Digest, ".state"))
	s.stats.commits.Add(1)
	s.log.Debug("blob verified and committed", "digest", b.desc.Digest, "size", b.desc.Size)
	b.mu.Lock()
	b.complete = true
	b.notifyLocked()
	b.mu.Unlock()
}
