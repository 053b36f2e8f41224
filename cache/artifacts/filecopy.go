package artifacts

import (
	"fmt"
	"os"
	"path/filepath"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/cache/internal/layout"
)

// File copies are whole copies of regular files from the mount's file
// views, written from bytes their layer format verified, so that later
// opens of the file can be handed to the kernel (FUSE passthrough) and read
// at the speed of a local file. They live under files/v<version>/, named
// by the layer's digest and size and the file's position in the layer's
// index, which the layer's bytes and the index format version fix.

// OpenFileCopy opens the copy of file entry of layer, if there is one of
// size bytes, and tells the store's policy of its use. Prune or the cap
// may remove the copy once it is open: the open file stays readable, and
// the next OpenFileCopy finds none, so the caller reads through the layer
// again.
func OpenFileCopy(s *cache.Store, layer ocispec.Descriptor, version, entry int, size int64) (*os.File, bool) {
	path, err := layout.FileCopyPath(s.Root(), layer, version, entry)
	if err != nil {
		return nil, false
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, false
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != size {
		f.Close()
		return nil, false
	}
	s.Policy().Opened(path)
	return f, true
}

// FileCopy is a file copy being written, in ingest/ until Commit.
type FileCopy struct {
	s    *cache.Store
	f    *os.File
	path string
}

// NewFileCopy starts the copy of file entry of layer, size bytes long.
// The caller writes the file's verified bytes with WriteAt, then calls
// Commit, or Abort. The store's policy is asked for room for size bytes
// first, as for a blob the cache lacks; if there is none, it returns an
// error wrapping cache.ErrOverCap.
func NewFileCopy(s *cache.Store, layer ocispec.Descriptor, version, entry int, size int64) (*FileCopy, error) {
	path, err := layout.FileCopyPath(s.Root(), layer, version, entry)
	if err != nil {
		return nil, err
	}
	if err := s.Policy().Reserve(size); err != nil {
		return nil, fmt.Errorf("file copy of %d bytes: %w", size, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), layout.DirMode); err != nil {
		return nil, err
	}
	f, err := layout.CreateLockedTemp(filepath.Join(s.Root(), layout.Ingest), "file-*.tmp")
	if err != nil {
		return nil, err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &FileCopy{s: s, f: f, path: path}, nil
}

// WriteAt writes verified bytes of the file at off.
func (c *FileCopy) WriteAt(p []byte, off int64) (int, error) { return c.f.WriteAt(p, off) }

// Commit syncs the copy and renames it into files/, read-only; the
// store's policy is told, as after a blob's commit.
func (c *FileCopy) Commit() error {
	if err := c.s.CommitFile(c.f, c.path); err != nil {
		return fmt.Errorf("file copy %s: %w", filepath.Base(c.path), err)
	}
	return nil
}

// Abort drops an unfinished copy.
func (c *FileCopy) Abort() {
	c.f.Close()
	os.Remove(c.f.Name())
}
