package gc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/cache/artifacts"
	"github.com/imgfs/imgfs/cache/internal/layout"
	"github.com/imgfs/imgfs/internal/oci"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PruneOptions say what Prune removes. Whatever they say, it never removes
// a blob a live pin names (a mount in any process), nor the file copies or
// index of such a layer, nor a partial whose writer lock a live process
// holds.
type PruneOptions struct {
	// All removes every blob, file copy and layer index not pinned, and
	// so every reference whose root goes with them, and every dead
	// mount's log.
	All bool
	// MaxSize, if at least 0, removes complete and partial blobs and file
	// copies least recently used first until Usage.Capped is at most
	// MaxSize; a blob takes its layer's copies and index with it.
	MaxSize int64
	// OlderThan, if positive, removes the blobs and file copies last used
	// before then.
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

// PrunedFileCopies are the file copies of one layer Prune removed (or
// would), for one reason.
type PrunedFileCopies struct {
	Layer     digest.Digest `json:"layer"`
	LayerSize int64         `json:"layer_size"`
	Copies    int           `json:"copies"`
	DiskBytes int64         `json:"disk_bytes"`
	Reason    string        `json:"reason"`
}

// PruneReport says what Prune removed, or would with DryRun.
type PruneReport struct {
	Blobs      []PrunedBlob       `json:"blobs"`
	FileCopies []PrunedFileCopies `json:"file_copies"`
	Refs       []string           `json:"refs"`
	Indexes    int                `json:"indexes"`
	Sources    int                `json:"sources"`
	StalePins  int                `json:"stale_pins"`
	Logs       int                `json:"logs"`
	Freed      int64              `json:"freed"` // bytes on disk
	KeptPinned int                `json:"kept_pinned"`
	// KeptPinnedCopies counts the file copies kept because a live pin
	// names their layer.
	KeptPinnedCopies int  `json:"kept_pinned_file_copies"`
	KeptInUse        int  `json:"kept_in_use"`
	DryRun           bool `json:"dry_run,omitempty"`
}

// File copies and layer indexes are derived from their layer: they go
// with its blob when Prune removes it, and are pinned with it. A copy is
// also removed on its own: by --all, when no reference reaches its layer
// and the layer's blob is gone (after unreferencedGrace), by OlderThan
// from its own last use, and by MaxSize, least recently used first among
// blobs and copies alike. An index whose blob was evicted earlier (by the
// cap) stays while a reference reaches its layer: reads of the layer's
// files fetch only the spans they need, verified by it.
const withItsLayer = "with its layer"

// Prune removes blobs and housekeeping leftovers as opts say.
func Prune(s *cache.Store, opts PruneOptions) (PruneReport, error) {
	rep := PruneReport{DryRun: opts.DryRun, Refs: []string{}, Blobs: []PrunedBlob{}, FileCopies: []PrunedFileCopies{}}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	pins, stale, err := livePins(s, opts.DryRun)
	if err != nil {
		return rep, fmt.Errorf("prune: read pins: %w", err)
	}
	rep.StalePins = stale
	pinned := pinnedSet(pins, nil)
	inv, err := TakeInventory(s)
	if err != nil {
		return rep, fmt.Errorf("prune: %w", err)
	}
	usage, err := DiskUsage(s)
	if err != nil {
		return rep, fmt.Errorf("prune: %w", err)
	}
	// reachable: every digest a reference whose root is cached names.
	reachable := map[digest.Digest]bool{}
	for _, r := range inv.Refs {
		if !r.Missing {
			for _, d := range r.reached {
				reachable[d] = true
			}
		}
	}
	indexBytes := layerIndexBytes(s)

	removed := map[int]string{} // index in inv.Blobs → reason
	var lru []lruEntry
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
			lru = append(lru, lruEntry{evictable{lastUse: b.LastUse, name: string(b.Digest), diskBytes: b.DiskBytes, blob: true}, i})
		}
	}
	removedLayer := map[digest.Digest]bool{}
	for i := range removed {
		removedLayer[inv.Blobs[i].Digest] = true
	}
	held := map[digest.Digest]bool{}
	for _, b := range inv.Blobs {
		held[b.Digest] = true
	}
	copyGone := map[int]string{} // index in inv.copies → reason
	for i, c := range inv.copies {
		switch {
		case pinned[c.Layer]:
			rep.KeptPinnedCopies++
		case opts.All:
			copyGone[i] = "all"
		case removedLayer[c.Layer]:
			copyGone[i] = withItsLayer
		case !held[c.Layer] && !reachable[c.Layer] && now.Sub(c.LastUse) > unreferencedGrace:
			copyGone[i] = "unreferenced"
		case opts.OlderThan > 0 && now.Sub(c.LastUse) > opts.OlderThan:
			copyGone[i] = "older than " + opts.OlderThan.String()
		default:
			lru = append(lru, lruEntry{evictable{lastUse: c.LastUse, name: c.Path, diskBytes: c.DiskBytes}, i})
		}
	}
	if opts.MaxSize >= 0 && !opts.All {
		current := usage.Capped()
		for i := range removed {
			current -= inv.Blobs[i].DiskBytes
		}
		for d := range removedLayer {
			current -= indexBytes[d]
		}
		for i := range copyGone {
			current -= inv.copies[i].DiskBytes
		}
		sort.SliceStable(lru, func(a, b int) bool { return lru[a].before(lru[b].evictable) })
		for _, e := range lru {
			if current <= opts.MaxSize {
				break
			}
			if !e.blob {
				if _, ok := copyGone[e.i]; !ok {
					copyGone[e.i] = "over --max-size"
					current -= e.diskBytes
				}
				continue
			}
			b := inv.Blobs[e.i]
			removed[e.i] = "over --max-size"
			current -= b.DiskBytes
			if !removedLayer[b.Digest] {
				removedLayer[b.Digest] = true
				current -= indexBytes[b.Digest]
			}
			for i, c := range inv.copies {
				if _, ok := copyGone[i]; !ok && c.Layer == b.Digest {
					copyGone[i] = withItsLayer
					current -= c.DiskBytes
				}
			}
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
			if err := removeBlobFiles(s, b); err != nil {
				s.Options().Logger.Warn("prune: could not remove a blob", "digest", b.Digest, "error", err)
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
	pruneFileCopies(s, &rep, inv.copies, copyGone, func(d digest.Digest) bool { return gone[d] && !left[d] })
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
		if err := dropRefs(s, rep.Refs, pinned); err != nil {
			return rep, fmt.Errorf("prune: update index.json: %w", err)
		}
	}
	keepIndex := func(name string) bool {
		d, _, ok := layout.ParseStem(name)
		return ok && (pinned[d] || left[d] || reachable[d] && !opts.All && !gone[d])
	}
	idx, freed := pruneDir(filepath.Join(s.Root(), layout.Indexes), 2, keepIndex, opts.DryRun)
	rep.Indexes, rep.Freed = idx, rep.Freed+freed
	src, freed := pruneSources(s, func(d digest.Digest) bool { return left[d] || referenced[d] || pinned[d] }, opts.DryRun)
	rep.Sources, rep.Freed = src, rep.Freed+freed
	keep := keptDeadLogs
	if opts.All {
		keep = 0
	}
	logs, freed := pruneDeadLogs(filepath.Join(s.Root(), layout.Logs), keep, opts.DryRun)
	rep.Logs, rep.Freed = logs, rep.Freed+freed
	return rep, nil
}

// lruEntry is a blob or a copy the MaxSize pass may remove; i is its index
// in Inventory.Blobs or Inventory.copies.
type lruEntry struct {
	evictable
	i int
}

// pruneFileCopies removes the copies gone names, except those that were
// to go with their layer when the layer's blob stayed (its removal
// failed), and reports them by layer and reason.
func pruneFileCopies(s *cache.Store, rep *PruneReport, copies []artifacts.StoredCopy, gone map[int]string, layerGone func(digest.Digest) bool) {
	byKey := map[string]int{}
	for i, c := range copies {
		reason, ok := gone[i]
		if !ok || reason == withItsLayer && !layerGone(c.Layer) {
			continue
		}
		if !rep.DryRun {
			if err := os.Remove(c.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				s.Options().Logger.Warn("prune: could not remove a file copy", "path", c.Path, "error", err)
				continue
			}
		}
		rep.Freed += c.DiskBytes
		key := layout.Stem(c.Layer, c.LayerSize) + " " + reason
		j, ok := byKey[key]
		if !ok {
			j = len(rep.FileCopies)
			byKey[key] = j
			rep.FileCopies = append(rep.FileCopies, PrunedFileCopies{Layer: c.Layer, LayerSize: c.LayerSize, Reason: reason})
		}
		rep.FileCopies[j].Copies++
		rep.FileCopies[j].DiskBytes += c.DiskBytes
	}
}

// layerIndexBytes is what the stored layer indexes take on disk, by layer
// digest, over every format version.
func layerIndexBytes(s *cache.Store) map[digest.Digest]int64 {
	out := map[digest.Digest]int64{}
	for _, e := range artifacts.LayerIndexFiles(s) {
		if d, _, ok := layout.ParseStem(e.Name()); ok {
			if fi, err := e.Info(); err == nil {
				out[d] += layout.DiskBytes(fi)
			}
		}
	}
	return out
}

// removeBlobFiles removes a blob's files. A complete blob's index goes
// separately; a partial's lock file is taken first, so that no process
// starts writing it meanwhile, and removed last.
func removeBlobFiles(s *cache.Store, b BlobInfo) error {
	if b.State == "complete" {
		err := os.Remove(b.files[0])
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		return err
	}
	lockPath, err := layout.IngestPath(s.Root(), b.Digest, b.Size, ".lock")
	if err != nil {
		return err
	}
	lock, err := layout.TryLock(lockPath)
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
	layout.UnlockRemove(lock)
	return nil
}

// dropRefs removes the named entries from index.json under the cache's
// lock, keeping any whose root is pinned or came back meanwhile.
func dropRefs(s *cache.Store, names []string, pinned map[digest.Digest]bool) error {
	drop := map[string]bool{}
	for _, n := range names {
		drop[n] = true
	}
	return s.RemoveRefs(func(m ocispec.Descriptor) bool {
		return drop[m.Annotations[ocispec.AnnotationRefName]] && !pinned[m.Digest] && !s.Exists(m)
	})
}

// pruneDir removes the files depth levels under dir whose name keep
// refuses, and returns how many and their bytes on disk.
func pruneDir(dir string, depth int, keep func(name string) bool, dryRun bool) (int, int64) {
	n, freed := 0, int64(0)
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		if strings.Count(rel, string(filepath.Separator)) != depth-1 || keep(d.Name()) {
			return nil
		}
		size := layout.FileDiskBytes(path)
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
func pruneSources(s *cache.Store, keep func(digest.Digest) bool, dryRun bool) (int, int64) {
	return pruneDir(filepath.Join(s.Root(), layout.Sources), 2, func(name string) bool {
		for _, alg := range oci.Algorithms() {
			if d := digest.NewDigestFromEncoded(alg, name); oci.CheckDigest(d) == nil {
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
		dead = append(dead, deadLog{path, fi.ModTime(), layout.DiskBytes(fi)})
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
	n, _ := pruneDeadLogs(filepath.Join(root, layout.Logs), keep, false)
	return n
}
