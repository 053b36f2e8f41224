package cache

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
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
//   - a blob a live pin of another process names (see Pin), nor the file
//     copies of a layer so pinned;
//   - an index or manifest that a reference in index.json walks through,
//     so references stay resolvable offline;
//   - with CapOptions.KeepOwnPins, what this process's own pins name.
//
// A process's own mount can refetch what it evicts, so by default its own
// pins do not stop eviction. When what must stay exceeds the cap, the
// cache stays over it, serving on, and says so once in the log.

// CapOptions tune SetMaxSize.
type CapOptions struct {
	// KeepOwnPins protects what this store's pins name, for a process
	// that cannot fetch again (an offline mount).
	KeepOwnPins bool
}

// capState is a store's cap, and the pins it created.
type capState struct {
	max      atomic.Int64 // 0: no cap
	keepOwn  atomic.Bool
	overSaid atomic.Bool // the over-the-cap warning was logged
	evicted  atomic.Int64

	pass sync.Mutex // one eviction pass at a time

	mu      sync.Mutex
	ownPins map[string]bool
}

// capStates holds the state of stores that set a cap or made a pin. The
// hooks on the read path only look it up, so stores that use neither add
// nothing to it.
var capStates sync.Map // *Store → *capState

func (s *Store) capState() *capState {
	if v, ok := capStates.Load(s); ok {
		return v.(*capState)
	}
	v, _ := capStates.LoadOrStore(s, &capState{ownPins: map[string]bool{}})
	return v.(*capState)
}

func (s *Store) lookupCap() *capState {
	if v, ok := capStates.Load(s); ok {
		return v.(*capState)
	}
	return nil
}

// SetMaxSize caps the store's blobs, partials, indexes and file copies at
// max bytes on disk; 0 removes the cap. It evicts at once down to the cap.
func (s *Store) SetMaxSize(max int64, opts CapOptions) {
	st := s.capState()
	st.max.Store(max)
	st.keepOwn.Store(opts.KeepOwnPins)
	if max > 0 {
		s.evictTo(max)
	}
}

// Evictions returns how many blobs and file copies the cap has evicted.
func (s *Store) Evictions() int64 {
	if st := s.lookupCap(); st != nil {
		return st.evicted.Load()
	}
	return 0
}

// rememberOwnPin records a pin this store made.
func (s *Store) rememberOwnPin(p *Pin) {
	st := s.capState()
	st.mu.Lock()
	st.ownPins[p.path] = true
	st.mu.Unlock()
}

// beforeOpen is called as a reader opens desc: it notes the use, and
// under a cap makes room for the whole blob if the cache lacks it and no
// one in this process has it open already.
func (s *Store) beforeOpen(desc ocispec.Descriptor) {
	s.NoteUse(desc)
	st := s.lookupCap()
	if st == nil || st.max.Load() <= 0 || s.Exists(desc) {
		return
	}
	s.mu.Lock()
	_, open := s.blobs[blobKey{desc.Digest, desc.Size}]
	s.mu.Unlock()
	if !open {
		s.evictTo(st.max.Load() - desc.Size)
	}
}

// afterCommit is called once a blob is committed: under a cap, a pass
// runs in the background, off the commit's path.
func (s *Store) afterCommit() {
	st := s.lookupCap()
	if st == nil || st.max.Load() <= 0 {
		return
	}
	// Refused only when the store closes, when there is nothing to keep.
	_ = s.Go(func(context.Context) { s.evictTo(st.max.Load()) })
}

// evictTo evicts complete blobs and file copies, least recently used
// first, until the capped usage is at most target, and returns the capped
// usage it leaves (0 if it cannot measure it). A copy goes on its own: its
// layer's blob and index stay, and the blob's eviction leaves its copies
// and index, which serve the layer's files without it.
func (s *Store) evictTo(target int64) int64 {
	st := s.capState()
	st.pass.Lock()
	defer st.pass.Unlock()
	usage, err := s.Usage()
	if err != nil {
		s.log.Warn("cache cap: cannot measure the cache", "error", err)
		return 0
	}
	current := usage.Capped()
	if current <= max(target, 0) {
		return current
	}
	keep, err := s.evictionKeep(st)
	if err != nil {
		s.log.Warn("cache cap: cannot tell what is in use; evicting nothing", "error", err)
		return current
	}
	inv, err := s.Inventory()
	if err != nil {
		s.log.Warn("cache cap: cannot list the cache", "error", err)
		return current
	}
	var candidates []evictable
	for _, b := range inv.Blobs {
		if b.State == "complete" && !b.Metadata && !keep[b.Digest] {
			candidates = append(candidates, evictable{path: b.files[0], lastUse: b.LastUse, name: string(b.Digest), diskBytes: b.DiskBytes, blob: true})
		}
	}
	for _, c := range inv.copies {
		if !keep[c.layer] {
			candidates = append(candidates, evictable{path: c.path, lastUse: c.lastUse, name: c.path, diskBytes: c.diskBytes})
		}
	}
	sort.SliceStable(candidates, func(i, j int) bool { return candidates[i].before(candidates[j]) })
	for _, c := range candidates {
		if current <= max(target, 0) {
			break
		}
		// Removing an open copy is safe: its readers keep their file.
		if err := os.Remove(c.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("cache cap: eviction failed", "path", c.path, "error", err)
			continue
		}
		current -= c.diskBytes
		st.evicted.Add(1)
		if c.blob {
			s.log.Debug("evicted under the cache cap", "digest", c.name, "last_use", c.lastUse)
		} else {
			s.log.Debug("file copy evicted under the cache cap", "path", c.path, "last_use", c.lastUse)
		}
	}
	if current > max(target, 0) && st.overSaid.CompareAndSwap(false, true) {
		s.log.Warn("the cache is over --cache-max-size: what is open, pinned by other mounts, or needed to resolve references takes more; serving on, over the cap",
			"cap", st.max.Load(), "usage", current)
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
// process, or pinned by a live pin (this store's own only with
// KeepOwnPins).
func (s *Store) evictionKeep(st *capState) (map[digest.Digest]bool, error) {
	pins, _, err := s.livePins(false)
	if err != nil {
		return nil, err
	}
	var except map[string]bool
	if !st.keepOwn.Load() {
		st.mu.Lock()
		except = make(map[string]bool, len(st.ownPins))
		for p := range st.ownPins {
			except[p] = true
		}
		st.mu.Unlock()
	}
	keep := pinnedSet(pins, except)
	s.mu.Lock()
	for k := range s.blobs {
		keep[k.digest] = true
	}
	s.mu.Unlock()
	return keep, nil
}
