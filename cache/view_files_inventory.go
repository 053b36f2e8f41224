package cache

import (
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/imgfs/imgfs/cache/internal/layout"
	"github.com/opencontainers/go-digest"
)

// File copies are derived from their layer, so cache ls, du, prune and the
// cap treat them as the layer's: listed with it, pinned with it, pruned
// with it. Each copy's last use is its file's modification time, moved by
// OpenFileCopy as NoteUse moves a blob's.

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

// fileCopyFile is one committed copy under files/.
type fileCopyFile struct {
	path      string
	layer     digest.Digest
	layerSize int64
	diskBytes int64
	lastUse   time.Time
}

// listFileCopies lists the committed copies under files/v*/, oldest use
// first (ties by path). Names that are not <alg>-<hex>-<size>-<entry> are
// not copies and are left out; Usage still counts their bytes.
func (s *Store) listFileCopies() []fileCopyFile {
	var out []fileCopyFile
	versions, _ := os.ReadDir(filepath.Join(s.root, layout.Files))
	for _, v := range versions {
		if !v.IsDir() {
			continue
		}
		dir := filepath.Join(s.root, layout.Files, v.Name())
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if !e.Type().IsRegular() {
				continue
			}
			d, size, ok := layout.ParseFileCopyName(e.Name())
			if !ok {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				continue // removed meanwhile
			}
			out = append(out, fileCopyFile{path: filepath.Join(dir, e.Name()), layer: d, layerSize: size,
				diskBytes: layout.DiskBytes(fi), lastUse: fi.ModTime()})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].lastUse.Equal(out[j].lastUse) {
			return out[i].lastUse.Before(out[j].lastUse)
		}
		return out[i].path < out[j].path
	})
	return out
}

// groupFileCopies sums copies by layer, in the order of their layers'
// latest use, most recent first.
func groupFileCopies(copies []fileCopyFile) []LayerFileCopies {
	byLayer := map[string]int{}
	out := []LayerFileCopies{}
	for _, c := range copies {
		key := layout.Stem(c.layer, c.layerSize)
		i, ok := byLayer[key]
		if !ok {
			i = len(out)
			byLayer[key] = i
			out = append(out, LayerFileCopies{Layer: c.layer, LayerSize: c.layerSize, Blob: "gone", Refs: []string{}})
		}
		g := &out[i]
		g.Copies++
		g.DiskBytes += c.diskBytes
		if c.lastUse.After(g.LastUse) {
			g.LastUse = c.lastUse
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].LastUse.After(out[j].LastUse) })
	return out
}
