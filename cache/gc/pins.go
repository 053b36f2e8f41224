package gc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/cache/internal/layout"
	"github.com/imgfs/imgfs/internal/errdefs"
	"github.com/imgfs/imgfs/internal/oci"
)

// A pin says that a live process may read some blobs, so that prune and
// eviction leave them alone. It is a file under pins/ listing the digests,
// flock'ed by its process for as long as it lives: the kernel drops the
// lock when the process dies, even by kill -9, so the next prune sees the
// pin unlocked, knows it stale and removes it. A pin is written under a
// .tmp name, locked, and renamed into place, so no reader ever finds a
// live pin unlocked.

// maxPinSize bounds a pin file read back from disk.
const maxPinSize = 16 << 20

// PinRecord is what a pin file holds.
type PinRecord struct {
	PID     int             `json:"pid"`
	Created time.Time       `json:"created"`
	Refs    []string        `json:"refs,omitempty"`
	Digests []digest.Digest `json:"digests"`
}

// Pin is a live pin, held by this process until Release.
type Pin struct {
	file *os.File
	path string
}

// NewPin records that this process may read digests (for refs, which name
// them for people), until Release or the process's death. Malformed
// digests are refused.
func NewPin(s *cache.Store, refs []string, digests []digest.Digest) (*Pin, error) {
	for _, d := range digests {
		if err := oci.CheckDigest(d); err != nil {
			return nil, fmt.Errorf("pin: %w", err)
		}
	}
	dir := filepath.Join(s.Root(), layout.Pins)
	if err := os.MkdirAll(dir, layout.DirMode); err != nil {
		return nil, fmt.Errorf("pin: %w", err)
	}
	sweepStalePins(dir)
	rec := PinRecord{PID: os.Getpid(), Created: time.Now().UTC(), Refs: refs, Digests: digests}
	data, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	f, err := layout.CreateLockedTemp(dir, strconv.Itoa(os.Getpid())+"-*.json.tmp")
	if err != nil {
		return nil, fmt.Errorf("pin: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("pin: %w", err)
	}
	final := strings.TrimSuffix(f.Name(), ".tmp")
	if err := os.Rename(f.Name(), final); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("pin: %w", err)
	}
	return &Pin{file: f, path: final}, nil
}

// Path returns the pin's file.
func (p *Pin) Path() string { return p.path }

// Release removes the pin and lets go of its lock.
func (p *Pin) Release() error {
	if p == nil || p.file == nil {
		return nil
	}
	err := os.Remove(p.path)
	p.file.Close()
	p.file = nil
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	return err
}

// LivePin is a pin whose process still holds it.
type LivePin struct {
	Path string
	PinRecord
}

// livePins returns the pins whose process holds them, and the paths of
// the stale ones, which no live process holds, for the caller to remove.
// A pin that cannot be read while locked protects nothing more than its
// name says, so it is skipped with its error logged.
func livePins(s *cache.Store) (live []LivePin, stale []string, err error) {
	dir := filepath.Join(s.Root(), layout.Pins)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasSuffix(name, ".json") {
			continue
		}
		path := filepath.Join(dir, name)
		held, err := layout.Held(path)
		if err != nil {
			continue // vanished meanwhile: released
		}
		if !held {
			stale = append(stale, path)
			continue
		}
		rec, err := readPin(path)
		if err != nil {
			s.Options().Logger.Warn("unreadable pin; its blobs are not known to be protected", "pin", path, "error", err)
			continue
		}
		live = append(live, LivePin{Path: path, PinRecord: rec})
	}
	return live, stale, nil
}

// LivePins returns the pins of live processes, leaving stale ones alone.
func LivePins(s *cache.Store) ([]LivePin, error) {
	live, _, err := livePins(s)
	return live, err
}

func readPin(path string) (PinRecord, error) {
	var rec PinRecord
	f, err := os.Open(path)
	if err != nil {
		return rec, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return rec, err
	}
	if fi.Size() > maxPinSize {
		return rec, fmt.Errorf("%w: pin of %d bytes", errdefs.ErrTooLarge, fi.Size())
	}
	if err := json.NewDecoder(f).Decode(&rec); err != nil {
		return rec, err
	}
	for _, d := range rec.Digests {
		if err := oci.CheckDigest(d); err != nil {
			return rec, err
		}
	}
	return rec, nil
}

// sweepStalePins removes the unlocked leftovers of dead processes in dir:
// half-written .tmp pins and pins whose process is gone.
func sweepStalePins(dir string) int {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		name := e.Name()
		if e.Type().IsRegular() && (strings.HasSuffix(name, ".json") || strings.HasSuffix(name, ".tmp")) {
			if layout.RemoveIfUnlocked(filepath.Join(dir, name)) {
				n++
			}
		}
	}
	return n
}

// pinnedSet is the union of the digests the live pins name, leaving out
// the pins at the paths in except.
func pinnedSet(pins []LivePin, except map[string]bool) map[digest.Digest]bool {
	set := map[digest.Digest]bool{}
	for _, p := range pins {
		if except[p.Path] {
			continue
		}
		for _, d := range p.Digests {
			set[d] = true
		}
	}
	return set
}
