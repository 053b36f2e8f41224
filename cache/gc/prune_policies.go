package gc

import (
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/cache/artifacts"
	"github.com/imgfs/imgfs/cache/internal/layout"
	"github.com/imgfs/imgfs/internal/oci"
)

// File copies and layer indexes are derived from their layer: they go
// with its blob when a prune removes it, and are pinned with it. A copy
// is also removed on its own: by All, when no reference reaches its layer
// and the layer's blob is gone (after unreferencedGrace), by OlderThan
// from its own last use, and by MaxSize, least recently used first among
// blobs and copies alike. An index whose blob was evicted earlier (by the
// cap) stays while a reference reaches its layer: reads of the layer's
// files fetch only the spans they need, verified by it.

// choice is a plan being worked out: which blobs and copies each policy
// takes, and why. A policy takes only what no earlier one has taken or
// kept, so the first that applies names the reason.
type choice struct {
	s    *cache.Store
	opts PruneOptions
	inv  Inventory

	pinned    map[digest.Digest]bool // named by a live pin
	reachable map[digest.Digest]bool // named by a reference whose root is cached
	held      map[digest.Digest]bool // a blob the cache holds, complete or partial

	blobReason []string // by index in inv.Blobs; "" while untaken
	blobKept   []bool   // pinned, or a partial being written
	copyReason []string // by index in inv.copies
	copyKept   []bool   // its layer is pinned
	takenLayer map[digest.Digest]bool

	keptPinned, keptPinnedCopies, keptInUse int
}

func newChoice(s *cache.Store, opts PruneOptions, inv Inventory, pinned map[digest.Digest]bool) *choice {
	c := &choice{s: s, opts: opts, inv: inv, pinned: pinned,
		reachable: map[digest.Digest]bool{}, held: map[digest.Digest]bool{}, takenLayer: map[digest.Digest]bool{},
		blobReason: make([]string, len(inv.Blobs)), blobKept: make([]bool, len(inv.Blobs)),
		copyReason: make([]string, len(inv.copies)), copyKept: make([]bool, len(inv.copies))}
	for _, r := range inv.Refs {
		if !r.Missing {
			for _, d := range r.reached {
				c.reachable[d] = true
			}
		}
	}
	for _, b := range inv.Blobs {
		c.held[b.Digest] = true
	}
	return c
}

// open says whether blob i is neither kept nor taken yet.
func (c *choice) open(i int) bool { return !c.blobKept[i] && c.blobReason[i] == "" }

// copyOpen says the same of copy i.
func (c *choice) copyOpen(i int) bool { return !c.copyKept[i] && c.copyReason[i] == "" }

func (c *choice) take(i int, reason string) {
	c.blobReason[i] = reason
	c.takenLayer[c.inv.Blobs[i].Digest] = true
}

// keepPinnedAndInUse keeps what no policy may take: blobs a live pin
// names and their layers' copies, and partials a live process writes.
func (c *choice) keepPinnedAndInUse() {
	for i, b := range c.inv.Blobs {
		switch {
		case c.pinned[b.Digest]:
			c.keptPinned++
			c.blobKept[i] = true
		case b.InUse:
			c.keptInUse++
			c.blobKept[i] = true
		}
	}
	for i, cp := range c.inv.copies {
		if c.pinned[cp.Layer] {
			c.keptPinnedCopies++
			c.copyKept[i] = true
		}
	}
}

// takeAll takes every blob and copy not kept (PruneOptions.All).
func (c *choice) takeAll() {
	for i := range c.inv.Blobs {
		if c.open(i) {
			c.take(i, ReasonAll)
		}
	}
	for i := range c.inv.copies {
		if c.copyOpen(i) {
			c.copyReason[i] = ReasonAll
		}
	}
}

// takeUnreferenced takes the garbage: blobs no reference reaches, and
// copies of a layer the cache no longer holds that no reference reaches,
// once unused for unreferencedGrace.
func (c *choice) takeUnreferenced() {
	now := c.opts.Now
	for i, b := range c.inv.Blobs {
		if c.open(i) && len(b.Refs) == 0 && now.Sub(b.LastUse) > unreferencedGrace {
			c.take(i, ReasonUnreferenced)
		}
	}
	c.takeWithTheirLayer()
	for i, cp := range c.inv.copies {
		if c.copyOpen(i) && !c.held[cp.Layer] && !c.reachable[cp.Layer] && now.Sub(cp.LastUse) > unreferencedGrace {
			c.copyReason[i] = ReasonUnreferenced
		}
	}
}

// takeOlderThan takes the blobs and copies last used longer than d ago,
// but not the indexes and manifests that references walk through.
func (c *choice) takeOlderThan(d time.Duration) {
	now, reason := c.opts.Now, "older than "+d.String()
	for i, b := range c.inv.Blobs {
		if c.open(i) && !b.Metadata && now.Sub(b.LastUse) > d {
			c.take(i, reason)
		}
	}
	c.takeWithTheirLayer()
	for i, cp := range c.inv.copies {
		if c.copyOpen(i) && now.Sub(cp.LastUse) > d {
			c.copyReason[i] = reason
		}
	}
}

// takeWithTheirLayer takes the copies of the layers taken so far.
func (c *choice) takeWithTheirLayer() {
	for i, cp := range c.inv.copies {
		if c.copyOpen(i) && c.takenLayer[cp.Layer] {
			c.copyReason[i] = ReasonWithLayer
		}
	}
}

// lruEntry is a blob or a copy takeOverMaxSize may take; i is its index
// in Inventory.Blobs or Inventory.copies.
type lruEntry struct {
	evictable
	i int
}

// takeOverMaxSize takes blobs and copies least recently used first, but
// not the indexes and manifests that references walk through, until the
// capped usage (Usage.Capped) left once all that is taken is gone fits in
// max. A blob takes its layer's copies and index with it.
func (c *choice) takeOverMaxSize(capped, max int64) {
	indexBytes := layerIndexBytes(c.s)
	current := capped
	for i, r := range c.blobReason {
		if r != "" {
			current -= c.inv.Blobs[i].DiskBytes
		}
	}
	for d := range c.takenLayer {
		current -= indexBytes[d]
	}
	for i, r := range c.copyReason {
		if r != "" {
			current -= c.inv.copies[i].DiskBytes
		}
	}
	var lru []lruEntry
	for i, b := range c.inv.Blobs {
		if c.open(i) && !b.Metadata {
			lru = append(lru, lruEntry{evictable{lastUse: b.LastUse, name: string(b.Digest), diskBytes: b.DiskBytes, blob: true}, i})
		}
	}
	for i, cp := range c.inv.copies {
		if c.copyOpen(i) {
			lru = append(lru, lruEntry{evictable{lastUse: cp.LastUse, name: cp.Path, diskBytes: cp.DiskBytes}, i})
		}
	}
	sort.SliceStable(lru, func(a, b int) bool { return lru[a].before(lru[b].evictable) })
	for _, e := range lru {
		if current <= max {
			break
		}
		if !e.blob {
			if c.copyOpen(e.i) {
				c.copyReason[e.i] = ReasonOverMaxSize
				current -= e.diskBytes
			}
			continue
		}
		b := c.inv.Blobs[e.i]
		current -= b.DiskBytes
		if !c.takenLayer[b.Digest] {
			current -= indexBytes[b.Digest]
		}
		c.take(e.i, ReasonOverMaxSize)
		for i, cp := range c.inv.copies {
			if c.copyOpen(i) && cp.Layer == b.Digest {
				c.copyReason[i] = ReasonWithLayer
				current -= cp.DiskBytes
			}
		}
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

// plan turns the choice into a Plan: the blobs and copies taken, and what
// goes with the blobs: references whose root goes, layer indexes, sources
// records, and the logs of dead mounts.
func (c *choice) plan() *Plan {
	p := &Plan{s: c.s, pinned: c.pinned,
		keptPinned: c.keptPinned, keptPinnedCopies: c.keptPinnedCopies, keptInUse: c.keptInUse}
	// gone: a blob of that digest is taken; left: one is not.
	gone, left := map[digest.Digest]bool{}, map[digest.Digest]bool{}
	for i, b := range c.inv.Blobs {
		if c.blobReason[i] == "" {
			left[b.Digest] = true
			continue
		}
		gone[b.Digest] = true
		p.blobs = append(p.blobs, PrunedBlob{BlobInfo: b, Reason: c.blobReason[i]})
	}
	for i, cp := range c.inv.copies {
		reason := c.copyReason[i]
		if reason == "" {
			continue
		}
		var needs []digest.Digest
		if reason == ReasonWithLayer {
			if left[cp.Layer] {
				continue // another blob of the layer's digest stays
			}
			needs = []digest.Digest{cp.Layer}
		}
		p.copies = append(p.copies, plannedCopy{path: cp.Path, layer: cp.Layer, layerSize: cp.LayerSize,
			diskBytes: cp.DiskBytes, reason: reason, needs: needs})
	}

	// A reference goes with its root; a blob it reaches stays referenced
	// unless every reference reaching it goes.
	referenced := map[digest.Digest]bool{}
	rootsOf := map[digest.Digest][]digest.Digest{} // blob → roots of the dropped references reaching it
	for _, r := range c.inv.Refs {
		root := r.Target.Digest
		if (r.Missing || gone[root] && !left[root]) && !c.pinned[root] {
			var needs []digest.Digest
			if !r.Missing {
				needs = []digest.Digest{root}
			}
			p.refs = append(p.refs, plannedRef{name: r.Name, needs: needs})
			for _, d := range r.Blobs {
				rootsOf[d] = append(rootsOf[d], needs...)
			}
			continue
		}
		for _, d := range r.Blobs {
			referenced[d] = true
		}
	}

	// An index goes with its blob, or on its own when no reference
	// reaches its layer (or with All). One not named for a layer goes.
	for _, f := range filesAt(filepath.Join(c.s.Root(), layout.Indexes), 2) {
		d, _, ok := layout.ParseStem(filepath.Base(f.path))
		if ok && (c.pinned[d] || left[d] || c.reachable[d] && !c.opts.All && !gone[d]) {
			continue
		}
		if ok && c.reachable[d] && !c.opts.All {
			f.needs = []digest.Digest{d}
		}
		p.indexes = append(p.indexes, f)
	}

	// A sources record goes once its blob is neither left, referenced nor
	// pinned. One not named for a digest goes.
sources:
	for _, f := range filesAt(filepath.Join(c.s.Root(), layout.Sources), 2) {
		for _, alg := range oci.Algorithms() {
			d := digest.NewDigestFromEncoded(alg, filepath.Base(f.path))
			if oci.CheckDigest(d) != nil {
				continue
			}
			if left[d] || referenced[d] || c.pinned[d] {
				continue sources
			}
			f.needs = append(f.needs, rootsOf[d]...)
		}
		p.sources = append(p.sources, f)
	}

	keep := keptDeadLogs
	if c.opts.All {
		keep = 0
	}
	p.logs = deadLogs(filepath.Join(c.s.Root(), layout.Logs), keep)
	return p
}

// filesAt lists the files depth levels under dir, with what they take on
// disk.
func filesAt(dir string, depth int) []plannedFile {
	var out []plannedFile
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		if strings.Count(rel, string(filepath.Separator)) != depth-1 {
			return nil
		}
		out = append(out, plannedFile{path: path, diskBytes: layout.FileDiskBytes(path)})
		return nil
	})
	return out
}
