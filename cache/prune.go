package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PruneOptions say what Prune removes. Whatever they say, it never removes
// a blob a live pin names (a mount in any process), nor a partial whose
// writer lock a live process holds.
type PruneOptions struct {
	// All removes every blob not pinned, and so every reference whose
	// root goes with them, and every dead mount's log.
	All bool
	// MaxSize, if at least 0, removes complete and partial blobs least
	// recently used first until Usage.Capped is at most MaxSize.
	MaxSize int64
	// OlderThan, if positive, removes the blobs last used before then.
	OlderThan time.Duration
	// DryRun reports what would go, and removes nothing.
	DryRun bool
	// Now is the time OlderThan counts back from; zero means time.Now.
	Now time.Time
}

// Without All, MaxSize or OlderThan, Prune removes only garbage: blobs no
// reference reaches (last used over unreferencedGrace ago, so that a fetch
// between its commit and its index.json entry keeps its blobs), their
// indexes and sources, references whose root is gone, stale pins, and the
// logs of dead mounts beyond the newest keptDeadLogs. The LRU passes
// (MaxSize, OlderThan) leave the indexes and manifests that references
// walk through: they are small, and they keep references resolvable.
const (
	unreferencedGrace = 10 * time.Minute
	keptDeadLogs      = 5
)

// PrunedBlob is one blob Prune removed (or would).
type PrunedBlob struct {
	BlobInfo
	Reason string `json:"reason"`
}

// PruneReport says what Prune removed, or would with DryRun.
type PruneReport struct {
	Blobs      []PrunedBlob `json:"blobs"`
	Refs       []string     `json:"refs"`
	Indexes    int          `json:"indexes"`
	Sources    int          `json:"sources"`
	StalePins  int          `json:"stale_pins"`
	Logs       int          `json:"logs"`
	Freed      int64        `json:"freed"` // bytes on disk
	KeptPinned int          `json:"kept_pinned"`
	KeptInUse  int          `json:"kept_in_use"`
	DryRun     bool         `json:"dry_run,omitempty"`
}

// Prune removes blobs and housekeeping leftovers as opts say.
func (s *Store) Prune(opts PruneOptions) (PruneReport, error) {
	rep := PruneReport{DryRun: opts.DryRun, Refs: []string{}, Blobs: []PrunedBlob{}}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	pins, stale, err := s.livePins(opts.DryRun)
	if err != nil {
		return rep, fmt.Errorf("prune: read pins: %w", err)
	}
	rep.StalePins = stale
	pinned := pinnedSet(pins, nil)
	inv, err := s.Inventory()
	if err != nil {
		return rep, fmt.Errorf("prune: %w", err)
	}
	usage, err := s.Usage()
	if err != nil {
		return rep, fmt.Errorf("prune: %w", err)
	}

	removed := map[int]string{} // index in inv.Blobs → reason
	var lru []int
	for i, b := range inv.Blobs {
		switch {
		case pinned[b.Digest]:
			rep.KeptPinned++
			continue
		case b.InUse:
			rep.KeptInUse++
			continue
		}
		switch {
		case opts.All:
			removed[i] = "all"
		case len(b.Refs) == 0 && now.Sub(b.LastUse) > unreferencedGrace:
			removed[i] = "unreferenced"
		case b.Metadata:
		case opts.OlderThan > 0 && now.Sub(b.LastUse) > opts.OlderThan:
			removed[i] = "older than " + opts.OlderThan.String()
		default:
			lru = append(lru, i)
		}
	}
	if opts.MaxSize >= 0 && !opts.All {
		current := usage.Capped()
		for i := range removed {
			current -= inv.Blobs[i].DiskBytes
		}
		sort.SliceStable(lru, func(a, b int) bool { return lessLRU(inv.Blobs[lru[a]], inv.Blobs[lru[b]]) })
		for _, i := range lru {
			if current <= opts.MaxSize {
				break
			}
			removed[i] = "over --max-size"
			current -= inv.Blobs[i].DiskBytes
		}
	}

	order := make([]int, 0, len(removed))
	for i := range removed {
		order = append(order, i)
	}
	sort.Ints(order)
	gone := map[digest.Digest]bool{}
	for _, i := range order {
		b := inv.Blobs[i]
		if !opts.DryRun {
			if err := s.removeBlobFiles(b); err != nil {
				s.log.Warn("prune: could not remove a blob", "digest", b.Digest, "error", err)
				continue
			}
		}
		gone[b.Digest] = true
		rep.Freed += b.DiskBytes
		rep.Blobs = append(rep.Blobs, PrunedBlob{BlobInfo: b, Reason: removed[i]})
	}

	// What is left: blobs not removed, and what they and the references
	// left reach.
	left := map[digest.Digest]bool{}
	for i, b := range inv.Blobs {
		if _, ok := removed[i]; !ok {
			left[b.Digest] = true
		}
	}
	referenced := map[digest.Digest]bool{}
	for _, r := range inv.Refs {
		rootGone := r.Missing || gone[r.Target.Digest] && !left[r.Target.Digest]
		if rootGone && !pinned[r.Target.Digest] {
			rep.Refs = append(rep.Refs, r.Name)
			continue
		}
		for _, d := range r.Blobs {
			referenced[d] = true
		}
	}
	if !opts.DryRun && len(rep.Refs) > 0 {
		if err := s.dropRefs(rep.Refs, pinned); err != nil {
			return rep, fmt.Errorf("prune: update index.json: %w", err)
		}
	}
	keepMeta := func(name string) bool {
		d, _, ok := parseStem(name)
		return ok && (left[d] || referenced[d] && !opts.All || pinned[d])
	}
	idx, freed := s.pruneDir(filepath.Join(s.root, indexesDir), 2, keepMeta, opts.DryRun)
	rep.Indexes, rep.Freed = idx, rep.Freed+freed
	src, freed := s.pruneSources(func(d digest.Digest) bool { return left[d] || referenced[d] || pinned[d] }, opts.DryRun)
	rep.Sources, rep.Freed = src, rep.Freed+freed
	keep := keptDeadLogs
	if opts.All {
		keep = 0
	}
	logs, freed := pruneDeadLogs(filepath.Join(s.root, logsDir), keep, opts.DryRun)
	rep.Logs, rep.Freed = logs, rep.Freed+freed
	return rep, nil
}

// removeBlobFiles removes a blob's files. A complete blob's index goes
// separately; a partial's lock file is taken first, so that no process
// starts writing it meanwhile, and removed last.
func (s *Store) removeBlobFiles(b BlobInfo) error {
	if b.State == "complete" {
		err := os.Remove(b.files[0])
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		return err
	}
	lockPath, err := s.ingestPath(b.Digest, b.Size, ".lock")
	if err != nil {
		return err
	}
	lock, err := tryLockPath(lockPath)
	if err != nil {
		return err
	}
	if lock == nil {
		return fmt.Errorf("partial %s is in use", b.Digest)
	}
	for _, f := range b.files {
		if f != lockPath {
			os.Remove(f)
		}
	}
	unlockRemove(lock)
	return nil
}

// dropRefs removes the named entries from index.json under the cache's
// lock, keeping any whose root is pinned or came back meanwhile.
func (s *Store) dropRefs(names []string, pinned map[digest.Digest]bool) error {
	drop := map[string]bool{}
	for _, n := range names {
		drop[n] = true
	}
	return withLock(s.root, func() error {
		index, err := s.readIndex()
		if err != nil {
			return err
		}
		kept := index.Manifests[:0]
		for _, m := range index.Manifests {
			name := m.Annotations[ocispec.AnnotationRefName]
			if drop[name] && !pinned[m.Digest] && !s.Exists(m) {
				continue
			}
			kept = append(kept, m)
		}
		index.Manifests = kept
		data, err := json.MarshalIndent(index, "", "  ")
		if err != nil {
			return err
		}
		return writeFileAtomic(filepath.Join(s.root, "index.json"), data)
	})
}

// pruneDir removes the files depth levels under dir whose name keep
// refuses, and returns how many and their bytes on disk.
func (s *Store) pruneDir(dir string, depth int, keep func(name string) bool, dryRun bool) (int, int64) {
	n, freed := 0, int64(0)
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		if strings.Count(rel, string(filepath.Separator)) != depth-1 || keep(d.Name()) {
			return nil
		}
		size := fileDiskBytes(path)
		if !dryRun && os.Remove(path) != nil {
			return nil
		}
		n++
		freed += size
		return nil
	})
	return n, freed
}

// pruneSources removes sources/ records of blobs keep refuses.
func (s *Store) pruneSources(keep func(digest.Digest) bool, dryRun bool) (int, int64) {
	return s.pruneDir(filepath.Join(s.root, "sources"), 2, func(name string) bool {
		for alg := range hexLengths {
			if d := digest.NewDigestFromEncoded(alg, name); CheckDigest(d) == nil {
				if keep(d) {
					return true
				}
			}
		}
		return false
	}, dryRun)
}

// pruneDeadLogs removes the log files under dir that no live process
// holds locked, all but the newest keep of them.
func pruneDeadLogs(dir string, keep int, dryRun bool) (int, int64) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0
	}
	type deadLog struct {
		path string
		mod  time.Time
		size int64
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
		dead = append(dead, deadLog{path, fi.ModTime(), diskBytes(fi)})
	}
	sort.Slice(dead, func(i, j int) bool { return dead[i].mod.After(dead[j].mod) })
	n, freed := 0, int64(0)
	for _, l := range dead[min(keep, len(dead)):] {
		if !dryRun && os.Remove(l.path) != nil {
			continue
		}
		n++
		freed += l.size
	}
	return n, freed
}

// PruneDeadLogs removes the logs of dead mounts under the cache's logs/
// directory, all but the newest keep, and returns how many it removed.
func PruneDeadLogs(root string, keep int) int {
	n, _ := pruneDeadLogs(filepath.Join(root, logsDir), keep, false)
	return n
}
