package gc

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/cache/internal/layout"
)

// Usage is the cache directory's disk use, in bytes allocated on disk
// (st_blocks × 512, what du(1) counts for files), split by what the bytes
// are. Directories themselves are not counted. Total is every file under
// the cache directory.
type Usage struct {
	Complete int64 `json:"complete"` // blobs/: committed, verified blobs
	Partial  int64 `json:"partial"`  // ingest/: partial blobs, their state and lock files, temporaries
	Indexes  int64 `json:"indexes"`  // indexes/: layer file indexes
	Files    int64 `json:"files"`    // files/: copies of view files, for passthrough
	Logs     int64 `json:"logs"`     // logs/: background mounts' logs
	Other    int64 `json:"other"`    // index.json, oci-layout, sources/, pins/
	Total    int64 `json:"total"`
}

// Capped is what the cache cap (LRU.SetMaxSize) and PruneOptions.MaxSize
// bound: blobs, partials, indexes and file copies. Logs are capped on their own, and the rest is a few small
// files.
func (u Usage) Capped() int64 { return u.Complete + u.Partial + u.Indexes + u.Files }

// field maps the top-level directories to the field that counts them.
func (u *Usage) field(top string) *int64 {
	switch top {
	case layout.Blobs:
		return &u.Complete
	case layout.Ingest:
		return &u.Partial
	case layout.Indexes:
		return &u.Indexes
	case layout.Files:
		return &u.Files
	case layout.Logs:
		return &u.Logs
	}
	return &u.Other
}

// DiskUsage walks the cache directory and adds up what its files take on
// disk. Files that vanish during the walk (a commit, a prune) are skipped.
func DiskUsage(s *cache.Store) (Usage, error) {
	var u Usage
	err := filepath.WalkDir(s.Root(), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		n := layout.DiskBytes(fi)
		rel, _ := filepath.Rel(s.Root(), path)
		top, _, _ := strings.Cut(rel, string(filepath.Separator))
		*u.field(top) += n
		u.Total += n
		return nil
	})
	return u, err
}
