package artifacts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/cache/internal/layout"
	"github.com/imgfs/imgfs/internal/errdefs"
)

// Layer indexes (internal/layer) are stored under indexes/v<version>/,
// named by the layer's digest and size like ingest files, so a new index
// format never reads an old one and two descriptors with one digest and
// different sizes never share an index.

// LayerIndexFiles lists the stored layer indexes, the regular files under
// indexes/, over every format version. Each is named by its layer's stem
// (layout.ParseStem).
func LayerIndexFiles(s *cache.Store) []fs.DirEntry {
	var out []fs.DirEntry
	versions, _ := os.ReadDir(filepath.Join(s.Root(), layout.Indexes))
	for _, v := range versions {
		if !v.IsDir() {
			continue
		}
		entries, _ := os.ReadDir(filepath.Join(s.Root(), layout.Indexes, v.Name()))
		for _, e := range entries {
			if e.Type().IsRegular() {
				out = append(out, e)
			}
		}
	}
	return out
}

// MaxLayerIndexSize bounds a stored layer index read back from disk.
const MaxLayerIndexSize = 1 << 30

// WriteLayerIndex stores data, the serialized index of the layer desc in
// format version, atomically and synced. An index is only as trusted as
// the bytes it was built from, so it is refused unless the blob is
// committed, that is verified, in the cache: the caller builds it from a
// pass that read the blob to its verified end.
func WriteLayerIndex(s *cache.Store, desc ocispec.Descriptor, version int, data []byte) error {
	path, err := layout.LayerIndexPath(s.Root(), desc, version)
	if err != nil {
		return err
	}
	if !s.Exists(desc) {
		return fmt.Errorf("index of %s: %w", desc.Digest, cache.ErrBlobNotVerified)
	}
	if int64(len(data)) > MaxLayerIndexSize {
		return fmt.Errorf("index of %s: %w: %d bytes", desc.Digest, errdefs.ErrTooLarge, len(data))
	}
	if err := os.MkdirAll(filepath.Dir(path), layout.DirMode); err != nil {
		return err
	}
	return s.WriteFileAtomic(path, data)
}

// ReadLayerIndex returns the stored index of the layer desc in format
// version, and false if there is none. It stays valid when the blob itself
// is evicted: its span digests verify whatever is fetched again.
func ReadLayerIndex(s *cache.Store, desc ocispec.Descriptor, version int) ([]byte, bool, error) {
	path, err := layout.LayerIndexPath(s.Root(), desc, version)
	if err != nil {
		return nil, false, err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	if fi.Size() > MaxLayerIndexSize {
		return nil, false, fmt.Errorf("index of %s: %w: %d bytes", desc.Digest, errdefs.ErrTooLarge, fi.Size())
	}
	data := make([]byte, fi.Size())
	if _, err := f.ReadAt(data, 0); err != nil {
		return nil, false, fmt.Errorf("read index of %s: %w", desc.Digest, err)
	}
	return data, true, nil
}
