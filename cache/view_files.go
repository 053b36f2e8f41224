package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// File copies are whole copies of regular files from the mount's file
// views, written from bytes their layer format verified, so that later
// opens of the file can be handed to the kernel (FUSE passthrough) and read
// at the speed of a local file. They live under files/v<version>/, named
// by the layer's digest and size and the file's position in the layer's
// index, which the layer's bytes and the index format version fix.
const fileCopiesDir = "files"

func (s *Store) fileCopyPath(layer ocispec.Descriptor, version, entry int) (string, error) {
	if err := checkDescriptor(layer.Digest, layer.Size); err != nil {
		return "", err
	}
	if version <= 0 || entry < 0 {
		return "", fmt.Errorf("file copy: version %d, entry %d", version, entry)
	}
	name := fmt.Sprintf("%s-%s-%d-%d", layer.Digest.Algorithm(), layer.Digest.Encoded(), layer.Size, entry)
	return filepath.Join(s.root, fileCopiesDir, "v"+strconv.Itoa(version), name), nil
}

// OpenFileCopy opens the copy of file entry of layer, if there is one of
// size bytes.
func (s *Store) OpenFileCopy(layer ocispec.Descriptor, version, entry int, size int64) (*os.File, bool) {
	path, err := s.fileCopyPath(layer, version, entry)
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
	return f, true
}

// FileCopy is a file copy being written, in ingest/ until Commit.
type FileCopy struct {
	f    *os.File
	path string
}

// NewFileCopy starts the copy of file entry of layer, size bytes long.
// The caller writes the file's verified bytes with WriteAt, then calls
// Commit, or Abort.
func (s *Store) NewFileCopy(layer ocispec.Descriptor, version, entry int, size int64) (*FileCopy, error) {
	path, err := s.fileCopyPath(layer, version, entry)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), dirMode); err != nil {
		return nil, err
	}
	f, err := createLockedTemp(ingestDir(s.root), "file-*.tmp")
	if err != nil {
		return nil, err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &FileCopy{f: f, path: path}, nil
}

// WriteAt writes verified bytes of the file at off.
func (c *FileCopy) WriteAt(p []byte, off int64) (int, error) { return c.f.WriteAt(p, off) }

// Commit syncs the copy and renames it into files/, read-only.
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
