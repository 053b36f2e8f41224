package cache

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/imgfs/imgfs/cache/internal/layout"
)

// sweep removes what dead processes left in ingest/ and the root: temporary
// files, private partials, stale lock files, and shared partials with no
// state to resume from. Every file a live process uses is locked by it, so
// a non-blocking lock probe tells the leftovers apart; a shared partial
// with its state is kept for the next reader to resume.
func (s *Store) sweep() {
	for _, dir := range []string{s.root, filepath.Join(s.root, layout.Ingest)} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			name := e.Name()
			if !e.Type().IsRegular() || !strings.HasSuffix(name, ".tmp") {
				continue
			}
			if layout.RemoveIfUnlocked(filepath.Join(dir, name)) {
				s.log.Debug("swept leftover file", "name", name)
			}
		}
	}
	s.sweepPartials()
}

// sweepPartials handles the shared partials, which their writer lock
// guards: it is taken for the sweep, so no process is using them meanwhile.
func (s *Store) sweepPartials() {
	dir := filepath.Join(s.root, layout.Ingest)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	present := map[string]bool{}
	for _, e := range entries {
		present[e.Name()] = true
	}
	stems := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		for _, suffix := range []string{".partial", ".state", ".lock"} {
			if stem, ok := strings.CutSuffix(name, suffix); ok {
				stems[stem] = true
			}
		}
	}
	for stem := range stems {
		lock, err := layout.TryLock(filepath.Join(dir, stem+".lock"))
		if err != nil || lock == nil {
			continue // in use by a live process, or not ours to judge
		}
		// Only <alg>-<hex>-<size> stems are resumed; older names are not.
		resumable := present[stem+".partial"] && present[stem+".state"] && strings.Count(stem, "-") == 2
		if !resumable {
			os.Remove(filepath.Join(dir, stem+".partial"))
			os.Remove(filepath.Join(dir, stem+".state"))
			s.log.Debug("swept orphaned partial blob", "name", stem)
		}
		layout.UnlockRemove(lock)
	}
}
