package gc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/cache/internal/layout"
)

// Report says what the plan would remove, removing nothing: a dry run.
func (p *Plan) Report() PruneReport {
	rep, _ := p.carry(false)
	return rep
}

// Apply removes what the plan says, in order: stale pins, blobs, file
// copies, references, layer indexes, sources records, logs. What depends
// on a blob that could not be removed stays. It reports what it removed;
// an error updating index.json stops it there.
func (p *Plan) Apply() (PruneReport, error) { return p.carry(true) }

// carry goes through the plan, removing each item if remove says so, and
// reports what it removed (or, without remove, would).
func (p *Plan) carry(remove bool) (PruneReport, error) {
	rep := PruneReport{DryRun: !remove, Refs: []string{}, Blobs: []PrunedBlob{}, FileCopies: []PrunedFileCopies{},
		StalePins: len(p.stalePins), KeptPinned: p.keptPinned, KeptPinnedCopies: p.keptPinnedCopies, KeptInUse: p.keptInUse}
	log := p.s.Options().Logger
	if remove {
		for _, path := range p.stalePins {
			os.Remove(path)
		}
	}
	gone := map[digest.Digest]bool{}
	ready := func(needs []digest.Digest) bool {
		for _, d := range needs {
			if !gone[d] {
				return false
			}
		}
		return true
	}
	for _, b := range p.blobs {
		if remove {
			if err := removeBlobFiles(p.s, b.BlobInfo); err != nil {
				log.Warn("prune: could not remove a blob", "digest", b.Digest, "error", err)
				continue
			}
		}
		gone[b.Digest] = true
		rep.Freed += b.DiskBytes
		rep.Blobs = append(rep.Blobs, b)
	}

	byKey := map[string]int{} // layer and reason → index in rep.FileCopies
	for _, c := range p.copies {
		if !ready(c.needs) {
			continue
		}
		if remove {
			if err := os.Remove(c.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				log.Warn("prune: could not remove a file copy", "path", c.path, "error", err)
				continue
			}
		}
		rep.Freed += c.diskBytes
		key := layout.Stem(c.layer, c.layerSize) + " " + c.reason
		j, ok := byKey[key]
		if !ok {
			j = len(rep.FileCopies)
			byKey[key] = j
			rep.FileCopies = append(rep.FileCopies, PrunedFileCopies{Layer: c.layer, LayerSize: c.layerSize, Reason: c.reason})
		}
		rep.FileCopies[j].Copies++
		rep.FileCopies[j].DiskBytes += c.diskBytes
	}

	for _, r := range p.refs {
		if ready(r.needs) {
			rep.Refs = append(rep.Refs, r.name)
		}
	}
	if remove && len(rep.Refs) > 0 {
		if err := dropRefs(p.s, rep.Refs, p.pinned); err != nil {
			return rep, fmt.Errorf("prune: update index.json: %w", err)
		}
	}

	for _, files := range []struct {
		planned []plannedFile
		count   *int
	}{{p.indexes, &rep.Indexes}, {p.sources, &rep.Sources}, {p.logs, &rep.Logs}} {
		for _, f := range files.planned {
			if !ready(f.needs) || remove && os.Remove(f.path) != nil {
				continue
			}
			*files.count++
			rep.Freed += f.diskBytes
		}
	}
	return rep, nil
}

// removeBlobFiles removes a blob's files. A complete blob's index goes
// separately; a partial's lock file is taken first, so that no process
// starts writing it meanwhile, and removed last.
func removeBlobFiles(s *cache.Store, b BlobInfo) error {
	if b.State == "complete" {
		err := os.Remove(b.files[0])
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		return err
	}
	lockPath, err := layout.IngestPath(s.Root(), b.Digest, b.Size, ".lock")
	if err != nil {
		return err
	}
	lock, err := layout.TryLock(lockPath)
	if err != nil {
		return err
	}
	if lock == nil {
		return fmt.Errorf("partial %s is in use", b.Digest)
	}
	for _, f := range b.files {
		if f != lockPath {
			os.Remove(f)
		}
	}
	layout.UnlockRemove(lock)
	return nil
}

// dropRefs removes the named entries from index.json under the cache's
// lock, keeping any whose root is pinned or came back meanwhile.
func dropRefs(s *cache.Store, names []string, pinned map[digest.Digest]bool) error {
	drop := map[string]bool{}
	for _, n := range names {
		drop[n] = true
	}
	return s.RemoveRefs(func(m ocispec.Descriptor) bool {
		return drop[m.Annotations[ocispec.AnnotationRefName]] && !pinned[m.Digest] && !s.Exists(m)
	})
}
