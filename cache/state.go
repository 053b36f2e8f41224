package cache

import (
	"encoding/json"
	"os"
)

// blobState is what survives a restart of a partial blob: the present
// ranges, and the hash over the prefix so resuming does not rehash it. It
// is saved after every fetch, by rename, so a kill -9 leaves the last good
// state. It never claims a range before its bytes were written.
type blobState struct {
	Size      int64      `json:"size"`
	Ranges    [][2]int64 `json:"ranges"`
	HashedTo  int64      `json:"hashed_to,omitempty"`
	HashState []byte     `json:"hash_state,omitempty"`
}

func (b *Blob) saveState() {
	b.stateMu.Lock()
	defer b.stateMu.Unlock()
	b.mu.Lock()
	if b.complete || b.present.Size() == 0 {
		b.mu.Unlock()
		return
	}
	st := blobState{Size: b.desc.Size, HashedTo: b.hashOff, HashState: b.hashState}
	for _, r := range b.present.Ranges() {
		st.Ranges = append(st.Ranges, [2]int64{r.Start, r.End})
	}
	b.mu.Unlock()
	data, err := json.Marshal(st)
	if err == nil {
		err = writeFileAtomic(b.store.ingestPath(b.desc.Digest, ".state"), data)
	}
	if err != nil {
		b.store.log.Warn("saving partial blob state failed", "digest", b.desc.Digest, "error", err)
	}
}

// loadState restores a saved state that matches the blob; anything odd is
// ignored, which only costs refetching.
func (b *Blob) loadState() {
	data, err := os.ReadFile(b.store.ingestPath(b.desc.Digest, ".state"))
	if err != nil {
		return
	}
	var st blobState
	if json.Unmarshal(data, &st) != nil || st.Size != b.desc.Size {
		return
	}
	for _, r := range st.Ranges {
		if 0 <= r[0] && r[0] < r[1] && r[1] <= st.Size {
			b.present.Add(Range{r[0], r[1]})
		}
	}
	b.restoreHash(st.HashState, st.HashedTo)
}
