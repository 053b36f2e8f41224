package cache

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/imgfs/imgfs/cache/internal/layout"
)

// layoutDirs are created on open. ingest/ holds everything in progress so
// that blobs/ only ever holds verified content.
var layoutDirs = []string{"blobs/sha256", "blobs/sha512", "ingest", "sources/sha256", "sources/sha512"}

func (s *Store) initLayout() error {
	if err := makePrivateDir(s.root, true); err != nil {
		return err
	}
	for _, dir := range layoutDirs {
		if err := os.MkdirAll(filepath.Join(s.root, dir), layout.DirMode); err != nil {
			return err
		}
	}
	for _, dir := range append([]string{"blobs", "sources"}, layoutDirs...) {
		if err := os.Chmod(filepath.Join(s.root, dir), layout.DirMode); err != nil {
			return err
		}
	}
	ociLayout, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err := s.writeIfMissing(filepath.Join(s.root, ocispec.ImageLayoutFile), ociLayout); err != nil {
		return err
	}
	empty, _ := json.Marshal(ocispec.Index{Versioned: indexVersion, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}})
	if err := s.writeIfMissing(filepath.Join(s.root, "index.json"), empty); err != nil {
		return err
	}
	// Creating files can succeed on a directory we cannot rename in;
	// probe the operation commits depend on.
	probe := filepath.Join(s.root, "ingest", ".probe")
	if err := os.WriteFile(probe, nil, layout.FileMode); err != nil {
		return err
	}
	return os.Remove(probe)
}

// makePrivateDir creates dir with mode 0700. An existing directory is made
// 0700 only if it is ours and not a shared one such as /tmp (sticky): the
// cache never changes the mode of a directory it does not own.
func makePrivateDir(dir string, tighten bool) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, layout.DirMode); err != nil {
			return err
		}
		return os.Chmod(dir, layout.DirMode)
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if tighten && ok && int(st.Uid) == os.Geteuid() && fi.Mode()&os.ModeSticky == 0 && fi.Mode().Perm() != layout.DirMode {
		return os.Chmod(dir, layout.DirMode)
	}
	return nil
}

func (s *Store) writeIfMissing(path string, data []byte) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	return s.writeFileAtomic(path, data)
}

// writeFileAtomic replaces path with data so that readers see the old or
// the new content, never a mix, and a crash leaves one of the two: the
// data is synced before the rename, and the directory after it.
func (s *Store) writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := layout.CreateLockedTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := s.hooks.syncData(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := s.hooks.renameFile(tmp.Name(), path); err != nil {
		return err
	}
	return s.hooks.syncDir(dir)
}

// withLock runs fn holding an exclusive flock on path, so that processes
// sharing the cache do not lose each other's updates.
func withLock(path string, fn func() error) error {
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	defer unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return fn()
}

var indexVersion = ocispec.Index{}.Versioned

func init() { indexVersion.SchemaVersion = 2 }

// SetRef records desc in index.json under name (the full normalised
// reference), replacing any earlier entry of that name, with annotations
// kept alongside (e.g. --label values).
func (s *Store) SetRef(name string, desc ocispec.Descriptor, annotations map[string]string) error {
	if err := layout.CheckBlob(desc.Digest, desc.Size); err != nil {
		return fmt.Errorf("set %s: %w", name, err)
	}
	entry := ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size, Platform: desc.Platform}
	entry.Annotations = map[string]string{}
	for k, v := range annotations {
		entry.Annotations[k] = v
	}
	entry.Annotations[ocispec.AnnotationRefName] = name
	return withLock(s.root, func() error {
		index, err := s.readIndex()
		if err != nil {
			return err
		}
		kept := index.Manifests[:0]
		for _, m := range index.Manifests {
			if m.Annotations[ocispec.AnnotationRefName] != name {
				kept = append(kept, m)
			}
		}
		index.Manifests = append(kept, entry)
		sort.SliceStable(index.Manifests, func(i, j int) bool {
			return index.Manifests[i].Annotations[ocispec.AnnotationRefName] < index.Manifests[j].Annotations[ocispec.AnnotationRefName]
		})
		data, err := json.MarshalIndent(index, "", "  ")
		if err != nil {
			return err
		}
		return s.writeFileAtomic(filepath.Join(s.root, "index.json"), data)
	})
}

// ErrRefNotFound is returned by LookupRef for a name index.json lacks.
var ErrRefNotFound = errors.New("reference not in cache")

// LookupRef returns the descriptor index.json records under name.
func (s *Store) LookupRef(name string) (ocispec.Descriptor, error) {
	index, err := s.readIndex()
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	for _, m := range index.Manifests {
		if m.Annotations[ocispec.AnnotationRefName] == name {
			if err := layout.CheckBlob(m.Digest, m.Size); err != nil {
				return ocispec.Descriptor{}, fmt.Errorf("cache index.json entry %s: %w", name, err)
			}
			delete(m.Annotations, ocispec.AnnotationRefName)
			if len(m.Annotations) == 0 {
				m.Annotations = nil
			}
			return m, nil
		}
	}
	return ocispec.Descriptor{}, fmt.Errorf("%w: %s", ErrRefNotFound, name)
}

func (s *Store) readIndex() (ocispec.Index, error) {
	var index ocispec.Index
	data, err := os.ReadFile(filepath.Join(s.root, "index.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return ocispec.Index{Versioned: indexVersion, MediaType: ocispec.MediaTypeImageIndex}, nil
	}
	if err != nil {
		return index, err
	}
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&index); err != nil {
		return index, fmt.Errorf("cache index.json: %w", err)
	}
	return index, nil
}

// Refs returns the entries of index.json, each named by its
// ocispec.AnnotationRefName annotation as SetRef stored it.
func (s *Store) Refs() ([]ocispec.Descriptor, error) {
	index, err := s.readIndex()
	return index.Manifests, err
}

// RemoveRefs removes the entries of index.json that drop says, under the
// cache's lock, so that processes sharing the cache do not lose each
// other's updates. drop sees each entry as Refs returns it, and decides
// under the lock, so it can check the cache once more.
func (s *Store) RemoveRefs(drop func(ocispec.Descriptor) bool) error {
	return withLock(s.root, func() error {
		index, err := s.readIndex()
		if err != nil {
			return err
		}
		kept := index.Manifests[:0]
		for _, m := range index.Manifests {
			if !drop(m) {
				kept = append(kept, m)
			}
		}
		index.Manifests = kept
		data, err := json.MarshalIndent(index, "", "  ")
		if err != nil {
			return err
		}
		return s.writeFileAtomic(filepath.Join(s.root, "index.json"), data)
	})
}

// The store's paths are the layout's (cache/internal/layout), under its
// root.

func (s *Store) blobPath(d digest.Digest) (string, error) { return layout.BlobPath(s.root, d) }

func (s *Store) sourcesPath(d digest.Digest) (string, error) { return layout.SourcesPath(s.root, d) }

func (s *Store) ingestPath(d digest.Digest, size int64, suffix string) (string, error) {
	return layout.IngestPath(s.root, d, size, suffix)
}

// sweep removes what dead processes left in ingest/ and the root: temporary
// files, private partials, stale lock files, and shared partials with no
// state to resume from. Every file a live process uses is locked by it, so
// a non-blocking lock probe tells the leftovers apart; a shared partial
// with its state is kept for the next reader to resume.
func (s *Store) sweep() {
	for _, dir := range []string{s.root, filepath.Join(s.root, layout.Ingest)} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			name := e.Name()
			if !e.Type().IsRegular() || !strings.HasSuffix(name, ".tmp") {
				continue
			}
			if layout.RemoveIfUnlocked(filepath.Join(dir, name)) {
				s.log.Debug("swept leftover file", "name", name)
			}
		}
	}
	s.sweepPartials()
}

// sweepPartials handles the shared partials, which their writer lock
// guards: it is taken for the sweep, so no process is using them meanwhile.
func (s *Store) sweepPartials() {
	dir := filepath.Join(s.root, layout.Ingest)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	present := map[string]bool{}
	for _, e := range entries {
		present[e.Name()] = true
	}
	stems := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		for _, suffix := range []string{".partial", ".state", ".lock"} {
			if stem, ok := strings.CutSuffix(name, suffix); ok {
				stems[stem] = true
			}
		}
	}
	for stem := range stems {
		lock, err := layout.TryLock(filepath.Join(dir, stem+".lock"))
		if err != nil || lock == nil {
			continue // in use by a live process, or not ours to judge
		}
		// Only <alg>-<hex>-<size> stems are resumed; older names are not.
		resumable := present[stem+".partial"] && present[stem+".state"] && strings.Count(stem, "-") == 2
		if !resumable {
			os.Remove(filepath.Join(dir, stem+".partial"))
			os.Remove(filepath.Join(dir, stem+".state"))
			s.log.Debug("swept orphaned partial blob", "name", stem)
		}
		layout.UnlockRemove(lock)
	}
}
