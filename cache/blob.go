package cache

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache/internal/blobfsm"
	"github.com/imgfs/imgfs/cache/internal/layout"
	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/byterange"
)

// Blob is one blob being read, shared by every reader of it in the process.
// Its lifecycle is a blobfsm.Machine; the Blob performs the machine's actions
// (fetch, hash, commit, replace the file) and feeds the results back.
//
// Until it is complete its bytes live in a sparse file under ingest/. The
// process holding the blob's writer lock uses the shared partial file and
// saves its present ranges beside it, so a later process resumes; any
// other process fetches into a private file of its own, so one partial
// file never has two writers.
type Blob struct {
	store *Store
	desc  ocispec.Descriptor

	owner     bool     // holds the writer lock: the shared partial and its state are ours
	lock      *os.File // the writer lock, if owner
	statePath string   // the saved state's path, if owner
	// partial is where the blob's bytes are until commit: the shared
	// partial if owner, else a private file. Set under diskMu.
	partial string

	users  atomic.Int32  // readers, fills and background goroutines holding the blob open
	closed chan struct{} // closed once the last user's Close has finished

	// done is the committed file, once there is one: reads of a complete
	// blob go straight to it.
	done atomic.Pointer[os.File]

	// diskMu orders what describes the blob on disk: saving the state,
	// replacing the file after a mismatch, and the commit. It is taken
	// before mu, never while holding it.
	diskMu sync.Mutex

	mu        sync.Mutex
	m         *blobfsm.Machine
	fetcher   blobio.Fetcher
	file      *dataFile           // the current generation's file
	hasher    hash.Hash           // the current generation's; used only by its hash worker
	hashState []byte              // the hasher's marshalled state at m.HashedTo(), for the state file
	held      map[int64]*chunkBuf // landed chunks' buffers by offset (heldbufs.go)
	genCtx    context.Context     // cancelled when the generation ends, or the store closes
	genCancel context.CancelFunc
	changed   chan struct{} // closed and replaced whenever the machine says wake

	// lead is the run streaming a whole-blob answer, if any, and leadAt
	// the chunk it is reading: later whole answers hand it their chunks
	// ahead of leadAt instead of streaming the blob again (fetchwhole.go).
	lead   blobfsm.Run
	leadAt int64
}

// dataFile is a blob's file in one generation. Reads, fetches and hashing
// take a reference while they use it, so that a file replaced after a
// mismatch is closed only once nothing reads or writes it.
type dataFile struct {
	f      *os.File
	path   string
	direct *directWriter // nil: every write goes through the page cache
	refs   atomic.Int32  // one for being current, one per user
}

func newDataFile(f *os.File, path string) *dataFile {
	d := &dataFile{f: f, path: path}
	d.refs.Store(1)
	return d
}

// newWritableFile is newDataFile for a file fetches land in: it also
// opens the file for O_DIRECT writes (directio.go), unless the store's
// filesystem has refused them already.
func (b *Blob) newWritableFile(f *os.File, path string) *dataFile {
	d := newDataFile(f, path)
	d.direct = b.store.openDirectWriter(path)
	return d
}

// writeChunk writes the chunk r, whose bytes are p: with O_DIRECT when it
// can (directio.go), otherwise through the page cache, and then, for a
// fill (writeback), with writeback started at once (writeback.go), since
// the commit's fsync waits for it.
func (d *dataFile) writeChunk(p []byte, r byterange.Range, writeback bool) error {
	if done, err := d.direct.writeAt(p, r.Start); done || err != nil {
		return err
	}
	if _, err := d.f.WriteAt(p, r.Start); err != nil {
		return err
	}
	if writeback {
		startWriteback(d.f, r)
	}
	return nil
}

// acquire takes a reference. The caller holds b.mu and d is b.file, or the
// caller holds a reference already.
func (d *dataFile) acquire() *dataFile {
	d.refs.Add(1)
	return d
}

func (d *dataFile) release() {
	if d.refs.Add(-1) == 0 {
		d.direct.close()
		d.f.Close()
	}
}

// OpenBlob returns the shared Blob for desc, opening it if no one in this
// process has it open. f, if not nil, becomes the blob's source of missing
// bytes. Callers must Close the blob.
func (s *Store) OpenBlob(desc ocispec.Descriptor, f blobio.Fetcher) (*Blob, error) {
	if err := layout.CheckBlob(desc.Digest, desc.Size); err != nil {
		return nil, fmt.Errorf("open blob: %w", err)
	}
	s.Policy().Opening(desc) // last use, and room under a cap (policy.go)
	key := blobKey{desc.Digest, desc.Size}
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		b, ok := s.blobs[key]
		if !ok {
			break
		}
		if b.users.Load() == 0 {
			// Its last user is saving its state and letting go of the
			// writer lock; take over once that is done.
			s.mu.Unlock()
			<-b.closed
			s.mu.Lock()
			continue
		}
		b.users.Add(1)
		if f != nil {
			b.mu.Lock()
			b.fetcher = f
			b.mu.Unlock()
		}
		return b, nil
	}
	b, err := s.loadBlob(desc, f)
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", desc.Digest, err)
	}
	s.blobs[key] = b
	return b, nil
}

func (s *Store) loadBlob(desc ocispec.Descriptor, f blobio.Fetcher) (*Blob, error) {
	b := &Blob{
		store:   s,
		desc:    desc,
		fetcher: f,
		closed:  make(chan struct{}),
		held:    make(map[int64]*chunkBuf),
		hasher:  desc.Digest.Algorithm().Hash(),
		changed: make(chan struct{}),
	}
	b.users.Store(1)
	b.genCtx, b.genCancel = context.WithCancel(s.life)
	now := b.store.now()
	if path, ok := s.CompletePath(desc); ok {
		file, err := os.Open(path)
		if err == nil {
			b.file = newDataFile(file, path)
			b.done.Store(file)
			b.m, _ = blobfsm.New(desc.Size, s.opts.ChunkSize, nil, 0, now)
			b.m.Adopted()
			return b, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	var present []byterange.Range
	var hashedTo int64
	lockPath, err := s.ingestPath(desc.Digest, desc.Size, ".lock")
	if err != nil {
		return nil, err
	}
	lock, err := layout.TryLock(lockPath)
	if err != nil {
		return nil, err
	}
	if lock != nil {
		b.owner, b.lock = true, lock
		b.partial, _ = s.ingestPath(desc.Digest, desc.Size, ".partial")
		b.statePath, _ = s.ingestPath(desc.Digest, desc.Size, ".state")
		file, err := os.OpenFile(b.partial, os.O_RDWR|os.O_CREATE, 0o600)
		if err == nil {
			err = file.Chmod(0o600)
		}
		if err != nil {
			if file != nil {
				file.Close()
			}
			layout.UnlockRemove(lock)
			return nil, err
		}
		b.file = b.newWritableFile(file, b.partial)
		present, hashedTo = b.loadState(file)
	} else {
		file, err := b.newPrivateFile()
		if err != nil {
			return nil, err
		}
		b.partial = file.Name()
		b.file = b.newWritableFile(file, b.partial)
	}
	var a blobfsm.Actions
	b.m, a = blobfsm.New(desc.Size, s.opts.ChunkSize, present, hashedTo, now)
	if b.m.HashedTo() != hashedTo {
		b.hasher.Reset()
		b.hashState = nil
	}
	b.mu.Lock()
	b.applyLocked(a)
	b.mu.Unlock()
	return b, nil
}

// newPrivateFile creates a file of this process's own for the blob's
// bytes, for when another process holds the writer lock. Nothing resumes
// it: it is removed on close, or by the sweep once this process is gone.
func (b *Blob) newPrivateFile() (*os.File, error) {
	return layout.CreateLockedTemp(filepath.Join(b.store.root, layout.Ingest), fmt.Sprintf("%s-%s-%d.*.private.tmp", b.desc.Digest.Algorithm(), b.desc.Digest.Encoded(), b.desc.Size))
}

// Close releases the caller's hold on the blob. The last one out saves the
// present ranges, closes the file and lets go of the writer lock.
func (b *Blob) Close() error {
	if b.users.Add(-1) > 0 {
		return nil
	}
	// Nothing else holds the blob: background work holds a user, and
	// OpenBlob waits on b.closed rather than reviving it.
	s := b.store
	b.saveState()
	b.mu.Lock()
	b.genCancel()
	b.dropHeldLocked()
	complete := b.m.Phase() == blobfsm.PhaseComplete
	file := b.file
	b.mu.Unlock()
	file.release()
	switch {
	case !b.owner:
		// Never resumed. If it was committed, it is gone from here already.
		os.Remove(b.partial)
	case complete:
		// Committed or adopted: what is left in ingest/ is stale.
		os.Remove(b.partial)
		os.Remove(b.statePath)
	}
	if b.lock != nil {
		layout.UnlockRemove(b.lock)
	}
	s.mu.Lock()
	if s.blobs[blobKey{b.desc.Digest, b.desc.Size}] == b {
		delete(s.blobs, blobKey{b.desc.Digest, b.desc.Size})
	}
	close(b.closed)
	s.mu.Unlock()
	return nil
}

// Complete reports whether the blob is verified and committed.
func (b *Blob) Complete() bool { return b.done.Load() != nil }

// goBackground runs fn in a goroutine that holds the blob open and belongs
// to the store's work group. It refuses once the store is closing. The
// caller holds the blob open, so it cannot be closed meanwhile.
func (b *Blob) goBackground(fn func()) bool {
	if !b.store.work.join() {
		return false
	}
	b.users.Add(1)
	go func() {
		defer b.store.work.leave()
		defer b.Close()
		fn()
	}()
	return true
}

// applyLocked performs the actions that start work: fetch runs, hashing,
// the early fsync and the commit, each in the background, and wakes
// waiters. Saving and replacing are done by the event's caller, which
// knows when. Work the store refuses to start goes back to the machine as
// a failure, so nothing waits for it. b.mu must be held.
func (b *Blob) applyLocked(a blobfsm.Actions) {
	for _, run := range a.Fetch {
		df, f, ctx := b.file.acquire(), b.fetcher, b.genCtx
		if !b.goBackground(func() { b.fetchRun(ctx, run, df, f) }) {
			df.release()
			b.m.FetchFailed(run.Gen, run.ID, ErrClosed, b.store.now())
			a.Wake = true
		}
	}
	if a.Hash {
		gen, h, df := b.m.Gen(), b.hasher, b.file.acquire()
		if !b.goBackground(func() { b.hashLoop(gen, h, df, a.HashFrom, a.HashTo) }) {
			df.release()
			b.m.HashStopped(gen, ErrClosed)
			a.Wake = true
		}
	}
	if a.Sync {
		// Best effort: the commit syncs again and reports any error.
		df := b.file.acquire()
		if !b.goBackground(func() { _ = b.store.hooks.syncFile(df.f); df.release() }) {
			df.release()
		}
	}
	if a.Commit {
		gen := b.m.Gen()
		if !b.goBackground(func() { b.commit(gen) }) {
			b.m.CommitFailed(ErrClosed)
			a.Wake = true
		}
	}
	if a.Wake {
		close(b.changed)
		b.changed = make(chan struct{})
	}
}

// wantLocked asks the machine for r and starts the runs it returns. A blob
// fetched into a private file first looks for the complete blob another
// process may have committed meanwhile. b.mu must be held.
func (b *Blob) wantLocked(r byterange.Range, plan blobfsm.Plan) error {
	if b.adoptCommittedLocked() {
		return nil
	}
	return b.requestLocked(r, plan)
}

// requestLocked is wantLocked for a caller that has just looked for a
// committed blob under the same hold of b.mu, so it does not look again.
// b.mu must be held.
func (b *Blob) requestLocked(r byterange.Range, plan blobfsm.Plan) error {
	a, err := b.m.Want(r, plan, b.fetcher == nil, b.store.now())
	b.applyLocked(a)
	if err != nil {
		return fmt.Errorf("blob %s: %w", b.desc.Digest, err)
	}
	return nil
}

// adoptCommittedLocked switches a blob fetched into a private file to the
// complete blob another process committed meanwhile, if there is one, and
// reports whether it did. It comes before any backoff: the committed blob
// was verified, whatever this process's source did. b.mu must be held.
func (b *Blob) adoptCommittedLocked() bool {
	if b.owner || b.m.Phase() != blobfsm.PhaseFetching || !b.store.Exists(b.desc) {
		return false
	}
	return b.adoptLocked()
}

// adoptLocked switches to the complete blob in blobs/, committed by
// another process or by Ingest, and reports whether it could. b.mu must be
// held.
func (b *Blob) adoptLocked() bool {
	path, ok := b.store.CompletePath(b.desc)
	if !ok {
		return false
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	b.swapFileLocked(newDataFile(f, path))
	b.done.Store(f)
	a := b.m.Adopted()
	if a.SetAside {
		b.stopGenerationLocked()
		d := b.desc.Digest
		b.goBackground(func() { b.store.notifyMismatch(d) }) // not under b.mu: OpenBlob takes it under s.mu
	}
	b.applyLocked(a)
	return true
}

// swapFileLocked makes df the blob's file and retires the old one, which
// is closed once nothing reads it. b.mu must be held.
func (b *Blob) swapFileLocked(df *dataFile) {
	old := b.file
	b.file = df
	old.release()
}

// fetcherName names a source for logs and errors.
func fetcherName(f blobio.Fetcher) string {
	switch f := f.(type) {
	case nil:
		return "none (offline)"
	case interface{ Source() string }:
		return f.Source()
	case fmt.Stringer:
		return f.String()
	default:
		return fmt.Sprintf("%T", f)
	}
}

// maxLoggedRanges bounds the ranges a log line lists.
const maxLoggedRanges = 16

func rangesString(rs []byterange.Range) string {
	parts := make([]string, 0, min(len(rs), maxLoggedRanges)+1)
	for i, r := range rs {
		if i == maxLoggedRanges {
			parts = append(parts, fmt.Sprintf("... (%d ranges)", len(rs)))
			break
		}
		parts = append(parts, r.String())
	}
	return strings.Join(parts, " ")
}

func digestOf(alg digest.Algorithm, h hash.Hash) digest.Digest { return digest.NewDigest(alg, h) }
