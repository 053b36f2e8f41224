package gc

import (
	"sort"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/imgfs/imgfs/cache/artifacts"
	"github.com/imgfs/imgfs/cache/internal/layout"
)

// File copies (cache/artifacts) are derived from their layer, so cache ls,
// du, prune and the cap treat them as the layer's: listed with it, pinned
// with it, pruned with it. Each copy's last use is its file's modification
// time, moved as the copy is opened (noteFileUse) as NoteUse moves a
// blob's.

// LayerFileCopies sums the file copies of one layer.
type LayerFileCopies struct {
	Layer     digest.Digest `json:"layer"`
	LayerSize int64         `json:"layer_size"`
	Copies    int           `json:"copies"`
	DiskBytes int64         `json:"disk_bytes"`
	// LastUse is the latest last use of the layer's copies.
	LastUse time.Time `json:"last_use"`
	// Blob is the state of the layer's blob in the cache: "complete",
	// "partial", or "gone" (evicted: the copies and the index outlive it).
	Blob string `json:"blob"`
	// Refs are the references in index.json whose tree reaches the layer.
	Refs []string `json:"refs"`
}

// groupFileCopies sums copies by layer, in the order of their layers'
// latest use, most recent first.
func groupFileCopies(copies []artifacts.StoredCopy) []LayerFileCopies {
	byLayer := map[string]int{}
	out := []LayerFileCopies{}
	for _, c := range copies {
		key := layout.Stem(c.Layer, c.LayerSize)
		i, ok := byLayer[key]
		if !ok {
			i = len(out)
			byLayer[key] = i
			out = append(out, LayerFileCopies{Layer: c.Layer, LayerSize: c.LayerSize, Blob: "gone", Refs: []string{}})
		}
		g := &out[i]
		g.Copies++
		g.DiskBytes += c.DiskBytes
		if c.LastUse.After(g.LastUse) {
			g.LastUse = c.LastUse
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].LastUse.After(out[j].LastUse) })
	return out
}
