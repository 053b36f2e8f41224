package cache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/imgfs/imgfs/cache/internal/blobfsm"
	"github.com/imgfs/imgfs/cache/internal/layout"
	"github.com/imgfs/imgfs/internal/errdefs"
)

// commit puts a verified blob into blobs/: fsync the data, rename it in,
// fsync the directory. If another process committed the blob first, ours
// is dropped and theirs used. Either way the blob is then read through a
// read-only descriptor, so a committed inode is never open for writing.
// On failure the bytes stay verified and readable, waiters get the error,
// and the state is saved so that the next open commits.
func (b *Blob) commit(gen uint64) {
	s := b.store
	b.diskMu.Lock()
	defer b.diskMu.Unlock()
	b.mu.Lock()
	if b.m.Gen() != gen || b.m.Phase() != blobfsm.PhaseCommitting {
		b.mu.Unlock()
		return
	}
	df := b.file.acquire()
	b.mu.Unlock()
	path, err := b.commitFile(df)
	df.release()
	var ro *os.File
	if err == nil {
		ro, err = os.Open(path)
	}
	b.mu.Lock()
	if err != nil {
		err = fmt.Errorf("commit %s: %w", b.desc.Digest, err)
		s.log.Error("commit failed; the blob stays readable and the next open commits it", "digest", b.desc.Digest, "error", err)
		a := b.m.CommitFailed(err)
		b.applyLocked(a)
		b.mu.Unlock()
		if a.Save {
			b.writeState()
		}
		return
	}
	s.stats.commits.Add(1)
	s.Policy().Committed() // the cache cap's pass (policy.go), in the background
	b.swapFileLocked(newDataFile(ro, path))
	b.done.Store(ro)
	b.applyLocked(b.m.Committed())
	b.mu.Unlock()
	if b.owner {
		os.Remove(b.statePath)
	}
	s.log.Debug("blob verified and committed", "digest", b.desc.Digest, "size", b.desc.Size)
	s.notifyCommit(b.desc)
}

// commitFile moves df into blobs/ and returns the committed path.
func (b *Blob) commitFile(df *dataFile) (string, error) {
	s := b.store
	target, err := s.blobPath(b.desc.Digest)
	if err != nil {
		return "", err
	}
	if s.Exists(b.desc) {
		// Committed by another process: verified too, so drop ours.
		os.Remove(df.path)
		return target, nil
	}
	fi, err := df.f.Stat()
	if err != nil {
		return "", err
	}
	if fi.Size() > b.desc.Size {
		// Bytes past the end were never read; nothing serves them.
		if err := df.f.Truncate(b.desc.Size); err != nil {
			return "", err
		}
	} else if fi.Size() < b.desc.Size {
		return "", fmt.Errorf("%w: the file holds %d bytes, want %d", errdefs.ErrSizeMismatch, fi.Size(), b.desc.Size)
	}
	if err := s.hooks.syncFile(df.f); err != nil {
		return "", err
	}
	if err := s.hooks.renameFile(df.path, target); err != nil {
		return "", err
	}
	if err := s.hooks.syncDir(filepath.Dir(target)); err != nil {
		return "", err
	}
	// Best effort: the directories above keep others out regardless.
	_ = os.Chmod(target, 0o444)
	return target, nil
}

// mismatch handles a whole blob that hashed to got instead of its digest.
// Its bytes are dropped by replacing the file with a fresh one, never by
// truncating the one readers may be reading; the machine starts a new
// generation, waiters of the old one fail with errdefs.ErrDigestMismatch, and the
// store's OnMismatch callbacks are told.
func (b *Blob) mismatch(gen uint64, got digest.Digest, now time.Time) {
	s := b.store
	b.diskMu.Lock()
	defer b.diskMu.Unlock()
	b.mu.Lock()
	current := b.m.Gen() == gen && b.m.Phase() == blobfsm.PhaseVerifying
	b.mu.Unlock()
	if !current {
		return
	}
	// The fresh file takes the partial's place before the new generation
	// starts, so that no run of the new generation writes to the old file
	// and the commit never finds the old bytes under the partial's name.
	fresh, err := b.freshFile()
	if err != nil {
		b.mu.Lock()
		b.applyLocked(b.m.HashStopped(gen, fmt.Errorf("replace the file of %s: %w", b.desc.Digest, err)))
		b.mu.Unlock()
		s.log.Error("blob failed verification, and its file cannot be replaced", "digest", b.desc.Digest, "error", err)
		return
	}
	b.mu.Lock()
	fetched, source := b.dropGenerationLocked(fresh, func() blobfsm.Actions { return b.m.Mismatched(gen, now) })
	s.log.Error("blob failed verification; its fetched bytes were dropped and will be fetched afresh",
		"digest", b.desc.Digest, "got", got, "source", source, "ranges", fetched, "error", errdefs.ErrDigestMismatch)
	s.notifyMismatch(b.desc.Digest)
}

// stopGenerationLocked cancels the current generation's runs and lets go
// of its held buffers, whose bytes are no longer to be served: they
// failed verification, or another process's commit was adopted over
// them. b.mu must be held.
func (b *Blob) stopGenerationLocked() {
	b.genCancel()
	b.genCtx, b.genCancel = context.WithCancel(b.store.life)
	b.dropHeldLocked()
}

// dropGenerationLocked ends the current generation, whose fetched bytes
// were proven bad, once drop (the machine's mismatched or rejected event)
// has said so: the generation's runs are cancelled, its held buffers and
// its hasher are dropped, and fresh, the new generation's empty file from
// freshFile, takes the old file's place. It returns the fetched ranges and
// the source for the caller's log. b.mu must be held; it is released on
// return. b.diskMu must be held too, as for freshFile.
func (b *Blob) dropGenerationLocked(fresh *os.File, drop func() blobfsm.Actions) (fetched, source string) {
	// Counted before waiters wake, so that what they see adds up.
	b.store.stats.digestMismatches.Add(1)
	fetched = rangesString(b.m.FetchedRanges())
	source = fetcherName(b.fetcher)
	a := drop()
	b.stopGenerationLocked()
	b.hasher = b.desc.Digest.Algorithm().Hash()
	b.hashState = nil
	old := b.partial
	if !b.owner {
		b.partial = fresh.Name()
	}
	b.swapFileLocked(b.newWritableFile(fresh, b.partial))
	b.applyLocked(a)
	b.mu.Unlock()
	if !b.owner {
		os.Remove(old)
	}
	return fetched, source
}

// freshFile creates the empty file of a new generation. For the owner it
// is renamed over the shared partial, after removing the state that
// described the old bytes; b.diskMu must be held.
func (b *Blob) freshFile() (*os.File, error) {
	if !b.owner {
		return b.newPrivateFile()
	}
	f, err := layout.CreateLockedTemp(filepath.Join(b.store.root, layout.Ingest), filepath.Base(b.partial)+".*.tmp")
	if err != nil {
		return nil, err
	}
	if err := os.Remove(b.statePath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	if err := b.store.hooks.renameFile(f.Name(), b.partial); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}
