package cache

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The packages on top of the engine use it only through these, beyond
// what any reader uses (Root, Exists, CompletePath, Go, Options):
//   - Policy, SetPolicy (policy.go): the seam at which housekeeping
//     (cache/gc) is told of opens and commits, and asked for room;
//   - OpenBlobs: which blobs this process has open, which gc leaves;
//   - SavedPresent (progress.go): how much of a partial its state claims;
//   - Refs, RemoveRefs (layout.go): index.json, under the cache's lock;
//   - WriteFileAtomic, CommitFile: how files beside the blobs (the layer
//     indexes and file copies of cache/artifacts) are written, with the
//     engine's fsync and rename, so that they are as durable as blobs and
//     the engine's tests control both.
//
// Their paths and locks are cache/internal/layout's.

// OpenBlobs returns the blobs open in this process: being read, fetched or
// closed. Their files are in use, so housekeeping leaves them.
func (s *Store) OpenBlobs() []ocispec.Descriptor {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ocispec.Descriptor, 0, len(s.blobs))
	for k := range s.blobs {
		out = append(out, ocispec.Descriptor{Digest: k.digest, Size: k.size})
	}
	return out
}

// WriteFileAtomic replaces the file at path, under the cache directory,
// with data, so that readers see the old or the new content, never a mix,
// and a crash leaves one of the two.
func (s *Store) WriteFileAtomic(path string, data []byte) error {
	return s.writeFileAtomic(path, data)
}

// CommitFile puts f, a complete file this process wrote in ingest/, at
// path, read-only like a committed blob: it syncs f's data, closes f and
// renames it into place, tells the store's Policy (Committed), and syncs
// path's directory. On failure before the rename f is removed. A
// directory removed after the rename (a prune) is not an error: the file
// went with it.
func (s *Store) CommitFile(f *os.File, path string) error {
	tmp := f.Name()
	err := errors.Join(f.Chmod(0o444), s.hooks.syncData(f), f.Close())
	if err == nil {
		err = s.hooks.renameFile(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	s.Policy().Committed()
	if err := s.hooks.syncDir(filepath.Dir(path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Policy is the housekeeping a Store defers to at the moments the cache
// is used or grows. The store knows when to ask, not what a cap is or
// what last use means: cache/gc's LRU records last use and keeps the
// cache under a size cap. Methods are called from any goroutine with none
// of the store's locks held; they must return promptly and do long work
// in the background (Store.Go).
//
// The store calls Opening and Committed. Packages that keep files beside
// the blobs (cache/artifacts) call Reserve and Opened through
// Store.Policy, and Committed through Store.CommitFile.
type Policy interface {
	// Opening is called as a reader opens the blob desc, before any of
	// its bytes are fetched for that reader.
	Opening(desc ocispec.Descriptor)
	// Committed is called once a blob, or a file beside the blobs, has
	// been renamed into place.
	Committed()
	// Reserve is called before a file of n bytes beside the blobs, such
	// as a file copy, is written. An error wrapping ErrOverCap refuses
	// the file.
	Reserve(n int64) error
	// Opened is called once the file at path, beside the blobs, has been
	// opened for reading.
	Opened(path string)
}

// ErrOverCap is what a Policy's Reserve returns, wrapped, when a file
// would not fit under the cache's size cap even after eviction.
var ErrOverCap = errors.New("no room under the cache's size cap")

// SetPolicy gives the store its housekeeping. Call it once, right after
// Open and before the store is shared; nil leaves the store with none.
func (s *Store) SetPolicy(p Policy) {
	if p == nil {
		p = noPolicy{}
	}
	s.policy = p
}

// Policy returns the store's housekeeping: what SetPolicy gave it, or a
// policy that records nothing and refuses nothing.
func (s *Store) Policy() Policy {
	if s.policy == nil {
		return noPolicy{}
	}
	return s.policy
}

// noPolicy is a store's housekeeping until SetPolicy: none.
type noPolicy struct{}

func (noPolicy) Opening(ocispec.Descriptor) {}
func (noPolicy) Committed()                 {}
func (noPolicy) Reserve(int64) error        { return nil }
func (noPolicy) Opened(string)              {}
