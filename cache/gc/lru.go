package gc

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache"
)

// A size cap keeps a store's blobs, partials, indexes and file copies
// (Usage.Capped) at or under a limit while the store is open, by evicting
// complete blobs and file copies least recently used first. It acts at
// three moments, each cheap next to the fetch or copy it comes with: when
// a blob the cache lacks is opened, room is made for its whole size before
// any byte is fetched; when a file copy starts, room is made for it; and
// after each commit of a blob or a copy. It never evicts:
//   - a blob open in this process (its readers keep reading it), nor the
//     file copies of its layer;
//   - a blob a live pin names (see NewPin), nor the file copies of a
//     layer so pinned, except through the pins CapOptions.OwnPins lists;
//   - an index or manifest that a reference in index.json walks through,
//     so references stay resolvable offline.
//
// A process's own mount can refetch what it evicts, so its own pin need
// not stop eviction. When what must stay exceeds the cap, the cache stays
// over it, serving on, and says so once in the log.

// CapOptions tune SetMaxSize.
type CapOptions struct {
	// OwnPins are pins of this process whose blobs the cap may evict
	// all the same, because the process fetches again what it reads: a
	// mount's own pin. An offline mount, which cannot fetch, lists none.
	// Every other live pin protects what it names.
	OwnPins []*Pin
}

// LRU is the cache's housekeeping policy (cache.Policy): it records each
// blob's and file copy's last use as it is opened, and under a size cap
// evicts the least recently used first. Give each Store its own, with
// Store.SetPolicy, right after opening it.
type LRU struct {
	s   *cache.Store
	log *slog.Logger

	max      atomic.Int64 // 0: no cap
	overSaid atomic.Bool  // the over-the-cap warning was logged
	evicted  atomic.Int64

	pass sync.Mutex // one eviction pass at a time

	mu      sync.Mutex
	ownPins map[string]bool // paths of CapOptions.OwnPins
}

var _ cache.Policy = (*LRU)(nil)

// NewLRU returns the LRU policy for s, with no cap.
func NewLRU(s *cache.Store) *LRU {
	return &LRU{s: s, log: s.Options().Logger, ownPins: map[string]bool{}}
}

// SetMaxSize caps the store's blobs, partials, indexes and file copies at
// max bytes on disk; 0 removes the cap. It evicts at once down to the cap.
func (l *LRU) SetMaxSize(max int64, opts CapOptions) {
	own := make(map[string]bool, len(opts.OwnPins))
	for _, p := range opts.OwnPins {
		own[p.Path()] = true
	}
	l.mu.Lock()
	l.ownPins = own
	l.mu.Unlock()
	l.max.Store(max)
	if max > 0 {
		l.evictTo(max)
	}
}

// Evictions returns how many blobs and file copies the cap has evicted.
func (l *LRU) Evictions() int64 { return l.evicted.Load() }

// Opening notes the use of desc, and under a cap makes room for the whole
// blob if the cache lacks it and no one in this process has it open
// already.
func (l *LRU) Opening(desc ocispec.Descriptor) {
	NoteUse(l.s, desc)
	max := l.max.Load()
	if max <= 0 || l.s.Exists(desc) || isOpen(l.s, desc) {
		return
	}
	l.evictTo(max - desc.Size)
}

// isOpen reports whether desc is open in this process.
func isOpen(s *cache.Store, desc ocispec.Descriptor) bool {
	for _, o := range s.OpenBlobs() {
		if o.Digest == desc.Digest && o.Size == desc.Size {
			return true
		}
	}
	return false
}

// Committed runs a pass under a cap in the background, off the commit's
// path.
func (l *LRU) Committed() {
	if l.max.Load() <= 0 {
		return
	}
	// Refused only when the store closes, when there is nothing to keep.
	_ = l.s.Go(func(context.Context) { l.evictTo(l.max.Load()) })
}

// Reserve makes room for a file copy of n bytes under a cap, and refuses
// it with cache.ErrOverCap where even eviction leaves none.
func (l *LRU) Reserve(n int64) error {
	max := l.max.Load()
	if max <= 0 {
		return nil
	}
	if target := max - n; target < 0 || l.evictTo(target) > target {
		return cache.ErrOverCap
	}
	return nil
}

// Opened notes the use of the file copy at path.
func (l *LRU) Opened(path string) { noteFileUse(path) }

// evictTo evicts complete blobs and file copies, least recently used
// first, until the capped usage is at most target, and returns the capped
// usage it leaves (0 if it cannot measure it). A copy goes on its own: its
// layer's blob and index stay, and the blob's eviction leaves its copies
// and index, which serve the layer's files without it.
func (l *LRU) evictTo(target int64) int64 {
	l.pass.Lock()
	defer l.pass.Unlock()
	usage, err := DiskUsage(l.s)
	if err != nil {
		l.log.Warn("cache cap: cannot measure the cache", "error", err)
		return 0
	}
	current := usage.Capped()
	if current <= max(target, 0) {
		return current
	}
	keep, err := l.evictionKeep()
	if err != nil {
		l.log.Warn("cache cap: cannot tell what is in use; evicting nothing", "error", err)
		return current
	}
	inv, err := TakeInventory(l.s)
	if err != nil {
		l.log.Warn("cache cap: cannot list the cache", "error", err)
		return current
	}
	var candidates []evictable
	for _, b := range inv.Blobs {
		if b.State == "complete" && !b.Metadata && !keep[b.Digest] {
			candidates = append(candidates, evictable{path: b.files[0], lastUse: b.LastUse, name: string(b.Digest), diskBytes: b.DiskBytes, blob: true})
		}
	}
	for _, c := range inv.copies {
		if !keep[c.Layer] {
			candidates = append(candidates, evictable{path: c.Path, lastUse: c.LastUse, name: c.Path, diskBytes: c.DiskBytes})
		}
	}
	sort.SliceStable(candidates, func(i, j int) bool { return candidates[i].before(candidates[j]) })
	for _, c := range candidates {
		if current <= max(target, 0) {
			break
		}
		// Removing an open copy is safe: its readers keep their file.
		if err := os.Remove(c.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			l.log.Warn("cache cap: eviction failed", "path", c.path, "error", err)
			continue
		}
		current -= c.diskBytes
		l.evicted.Add(1)
		if c.blob {
			l.log.Debug("evicted under the cache cap", "digest", c.name, "last_use", c.lastUse)
		} else {
			l.log.Debug("file copy evicted under the cache cap", "path", c.path, "last_use", c.lastUse)
		}
	}
	if current > max(target, 0) && l.overSaid.CompareAndSwap(false, true) {
		l.log.Warn("the cache is over its size cap: what is open, pinned by other mounts, or needed to resolve references takes more; serving on, over the cap",
			"cap", l.max.Load(), "usage", current)
	}
	return current
}

// evictable is a complete blob or a file copy the cap may remove.
type evictable struct {
	path      string
	lastUse   time.Time
	name      string // the digest of a blob, the path of a copy: ties go by it
	diskBytes int64
	blob      bool
}

func (a evictable) before(b evictable) bool {
	if !a.lastUse.Equal(b.lastUse) {
		return a.lastUse.Before(b.lastUse)
	}
	return a.name < b.name
}

// evictionKeep is the set of digests the cap must not evict: open in this
// process, or pinned by a live pin other than the own pins.
func (l *LRU) evictionKeep() (map[digest.Digest]bool, error) {
	pins, stale, err := livePins(l.s)
	if err != nil {
		return nil, err
	}
	for _, path := range stale {
		os.Remove(path) // its process is gone: it protects nothing
	}
	l.mu.Lock()
	except := make(map[string]bool, len(l.ownPins))
	for p := range l.ownPins {
		except[p] = true
	}
	l.mu.Unlock()
	keep := pinnedSet(pins, except)
	for _, o := range l.s.OpenBlobs() {
		keep[o.Digest] = true
	}
	return keep, nil
}
