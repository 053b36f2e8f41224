package artifacts

import (
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/cache/internal/layout"
)

// StoredCopy is one committed copy under files/. Its last use is its
// file's modification time, which the store's policy moves as the copy
// is opened (see OpenFileCopy).
type StoredCopy struct {
	Path      string
	Layer     digest.Digest
	LayerSize int64
	DiskBytes int64
	LastUse   time.Time
}

// ListFileCopies lists the committed copies under files/v*/, oldest use
// first (ties by path). Names that are not <alg>-<hex>-<size>-<entry> are
// not copies and are left out; a walk of the directory still counts their
// bytes.
func ListFileCopies(s *cache.Store) []StoredCopy {
	var out []StoredCopy
	versions, _ := os.ReadDir(filepath.Join(s.Root(), layout.Files))
	for _, v := range versions {
		if !v.IsDir() {
			continue
		}
		dir := filepath.Join(s.Root(), layout.Files, v.Name())
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
			out = append(out, StoredCopy{Path: filepath.Join(dir, e.Name()), Layer: d, LayerSize: size,
				DiskBytes: layout.DiskBytes(fi), LastUse: fi.ModTime()})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].LastUse.Equal(out[j].LastUse) {
			return out[i].LastUse.Before(out[j].LastUse)
		}
		return out[i].Path < out[j].Path
	})
	return out
}
