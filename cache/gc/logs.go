package gc

import (
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/imgfs/imgfs/cache/internal/layout"
)

// Background mounts log to files under logs/, each held locked by its
// process while it runs (see cmd/imgfs). The logs of dead mounts are kept
// for a while, for whoever wants to know why a mount ended, and then
// pruned: when a background mount starts, and by every prune.

// deadLogs lists the log files under dir that no live process holds
// locked, all but the newest keep of them.
func deadLogs(dir string, keep int) []plannedFile {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	type deadLog struct {
		plannedFile
		mod time.Time
	}
	var dead []deadLog
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if lockHeld(path) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		dead = append(dead, deadLog{plannedFile{path: path, diskBytes: layout.DiskBytes(fi)}, fi.ModTime()})
	}
	sort.Slice(dead, func(i, j int) bool { return dead[i].mod.After(dead[j].mod) })
	var out []plannedFile
	for _, l := range dead[min(keep, len(dead)):] {
		out = append(out, l.plannedFile)
	}
	return out
}

// PruneDeadLogs removes the logs of dead mounts under the cache's logs/
// directory, all but the newest keep, and returns how many it removed.
func PruneDeadLogs(root string, keep int) int {
	n := 0
	for _, l := range deadLogs(filepath.Join(root, layout.Logs), keep) {
		if os.Remove(l.path) == nil {
			n++
		}
	}
	return n
}
