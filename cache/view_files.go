package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/imgfs/imgfs/cache/internal/layout"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// File copies are whole copies of regular files from the mount's file
// views, written from bytes their layer format verified, so that later
// opens of the file can be handed to the kernel (FUSE passthrough) and read
// at the speed of a local file. They live under files/v<version>/, named
// by the layer's digest and size and the file's position in the layer's
// index, which the layer's bytes and the index format version fix.

// ErrOverCap means a file copy was not started because it would not fit
// under the cache's cap (see SetMaxSize) even after eviction.
var ErrOverCap = errors.New("no room under --cache-max-size")

// OpenFileCopy opens the copy of file entry of layer, if there is one of
// size bytes, and notes its use. Prune or the cap may remove the copy once
// it is open: the open file stays readable, and the next OpenFileCopy
// finds none, so the caller reads through the layer again.
func (s *Store) OpenFileCopy(layer ocispec.Descriptor, version, entry int, size int64) (*os.File, bool) {
	path, err := layout.FileCopyPath(s.root, layer, version, entry)
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
	s.noteFileCopyUse(path)
	return f, true
}

// FileCopy is a file copy being written, in ingest/ until Commit.
type FileCopy struct {
	s    *Store
	f    *os.File
	path string
}

// NewFileCopy starts the copy of file entry of layer, size bytes long.
// The caller writes the file's verified bytes with WriteAt, then calls
// Commit, or Abort. Under a cap, room for size bytes is made first, as
// for a blob the cache lacks; if there is none, it returns ErrOverCap.
func (s *Store) NewFileCopy(layer ocispec.Descriptor, version, entry int, size int64) (*FileCopy, error) {
	path, err := layout.FileCopyPath(s.root, layer, version, entry)
	if err != nil {
		return nil, err
	}
	if st := s.lookupCap(); st != nil && st.max.Load() > 0 {
		if target := st.max.Load() - size; target < 0 || s.evictTo(target) > target {
			return nil, fmt.Errorf("file copy of %d bytes: %w", size, ErrOverCap)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), layout.DirMode); err != nil {
		return nil, err
	}
	f, err := layout.CreateLockedTemp(filepath.Join(s.root, layout.Ingest), "file-*.tmp")
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

// Commit syncs the copy and renames it into files/, read-only; under a
// cap, an eviction pass follows as after a blob's commit.
func (c *FileCopy) Commit() error {
	tmp := c.f.Name()
	err := errors.Join(c.f.Chmod(0o444), syncData(c.f), c.f.Close())
	if err == nil {
		err = renameFile(tmp, c.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("file copy %s: %w", filepath.Base(c.path), err)
	}
	c.s.afterCommit()
	if err := syncDir(filepath.Dir(c.path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Abort drops an unfinished copy.
func (c *FileCopy) Abort() {
	c.f.Close()
	os.Remove(c.f.Name())
}
