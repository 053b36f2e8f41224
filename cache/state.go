package cache

import (
	"encoding"
	"encoding/json"
	"os"

	"github.com/imgfs/imgfs/cache/internal/blobfsm"
	"github.com/imgfs/imgfs/internal/byterange"
)

// blobState is what survives a restart of a shared partial blob: the
// present ranges, and the hash over the prefix so resuming does not rehash
// it. It never claims a range before its bytes were written and synced to
// disk, and it is replaced by rename, so a kill -9 leaves the last good
// state.
type blobState struct {
	Size      int64      `json:"size"`
	Ranges    [][2]int64 `json:"ranges"`
	HashedTo  int64      `json:"hashed_to,omitempty"`
	HashState []byte     `json:"hash_state,omitempty"`
}

// saveState saves the state, if this process owns the shared partial.
func (b *Blob) saveState() {
	b.diskMu.Lock()
	defer b.diskMu.Unlock()
	b.writeState()
}

// trySaveState saves the state unless a save or a commit is under way,
// which a fetch should not wait for.
func (b *Blob) trySaveState() {
	if !b.diskMu.TryLock() {
		return
	}
	defer b.diskMu.Unlock()
	b.writeState()
}

// writeState syncs the data, then writes the state that claims it.
// b.diskMu must be held.
func (b *Blob) writeState() {
	if !b.owner {
		return
	}
	b.mu.Lock()
	if b.m.Phase() == blobfsm.PhaseComplete || b.m.Phase() == blobfsm.PhaseCommitting || b.m.PresentBytes() == 0 {
		b.mu.Unlock()
		return
	}
	// The ranges are read before the sync: every byte they claim was
	// written before it.
	st := blobState{Size: b.desc.Size, HashedTo: b.m.HashedTo(), HashState: b.hashState}
	if st.HashState == nil {
		st.HashedTo = 0
	}
	for _, r := range b.m.PresentRanges() {
		st.Ranges = append(st.Ranges, [2]int64{r.Start, r.End})
	}
	df := b.file.acquire()
	b.m.Saved(b.store.now())
	b.mu.Unlock()
	defer df.release()
	err := b.store.hooks.syncData(df.f)
	if err == nil {
		var data []byte
		data, err = json.Marshal(st)
		if err == nil {
			err = b.store.writeFileAtomic(b.statePath, data)
		}
	}
	if err != nil {
		b.store.log.Warn("saving partial blob state failed", "digest", b.desc.Digest, "error", err)
	}
}

// loadState reads the saved state of the shared partial, whose file is
// f. Anything odd is ignored, which only costs refetching; ranges past the
// file's end are dropped, since their bytes are not there.
func (b *Blob) loadState(f *os.File) (present []byterange.Range, hashedTo int64) {
	data, err := os.ReadFile(b.statePath)
	if err != nil {
		return nil, 0
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, 0
	}
	var st blobState
	if json.Unmarshal(data, &st) != nil || st.Size != b.desc.Size {
		return nil, 0
	}
	for _, r := range st.Ranges {
		if 0 <= r[0] && r[0] < r[1] && r[1] <= st.Size && r[1] <= fi.Size() {
			present = append(present, byterange.Range{Start: r[0], End: r[1]})
		}
	}
	u, ok := b.hasher.(encoding.BinaryUnmarshaler)
	if !ok || st.HashedTo <= 0 || u.UnmarshalBinary(st.HashState) != nil {
		b.hasher.Reset()
		return present, 0
	}
	b.hashState = st.HashState
	return present, st.HashedTo
}
