package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/oci"
)

// Defaults for Options fields left zero.
const (
	DefaultChunkSize      = 1 << 20
	DefaultFetchTimeout   = 30 * time.Second
	DefaultMaxConnections = 8
	DefaultReadahead      = 64 << 20
)

// VerifyMode says when a reader may see bytes whose blob digest has not
// been checked yet.
type VerifyMode int

const (
	// VerifyLazy serves bytes as they arrive, but answers a read that
	// includes the blob's last byte only once the whole digest is checked,
	// so a reader that reads to the end never ends cleanly on bad bytes.
	VerifyLazy VerifyMode = iota
	// VerifyStrict answers no read of a blob until its whole digest is
	// checked.
	VerifyStrict
)

// String returns "lazy" or "strict", as ParseVerifyMode reads them.
func (v VerifyMode) String() string {
	if v == VerifyStrict {
		return "strict"
	}
	return "lazy"
}

// ParseVerifyMode parses "lazy" or "strict".
func ParseVerifyMode(s string) (VerifyMode, error) {
	switch s {
	case "lazy":
		return VerifyLazy, nil
	case "strict":
		return VerifyStrict, nil
	}
	return 0, fmt.Errorf("verify mode %s: want lazy or strict", oci.Quote(s))
}

// Options tune how a Store fetches missing bytes.
type Options struct {
	// ChunkSize is the unit of lazy fetching and of the present-range
	// bookkeeping. A random 4 KiB read pulls one chunk.
	ChunkSize int64

	// FetchTimeout bounds how long a fetch may go without receiving bytes
	// once its request is sent, and how long a read waits without progress.
	FetchTimeout time.Duration

	// MaxConnections bounds the range requests in flight at once.
	MaxConnections int

	// Readahead is the largest window fetched ahead of a sequential reader.
	Readahead int64

	// Verify says when readers may see bytes not yet verified.
	Verify VerifyMode

	Logger *slog.Logger
}

// Store is a cache directory. One Store may serve many mounts and fetches
// in one process; several processes may share a directory.
type Store struct {
	root  string
	opts  Options
	log   *slog.Logger
	slots chan struct{} // one token per range request in flight

	// now is the clock the blob machines are fed; tests replace it.
	now func() time.Time
	// streamPause is how long a run waits for a want or for the hasher
	// (fetchstream.go); tests shorten it.
	streamPause time.Duration
	hooks       hooks // the calls tests replace (hooks.go)

	prefetching chan struct{} // one token per blob being prefetched
	directOff   atomic.Bool   // the cache filesystem refused O_DIRECT (directio.go)
	held        atomic.Int64  // chunk buffers all blobs hold (heldbufs.go)
	stats       counters
	work        workGroup // every goroutine the store starts

	// life ends when the store is closed; background work derives from it
	// so that Close does not wait out a stalled registry.
	life     context.Context
	shutdown context.CancelFunc

	policy Policy // housekeeping (policy.go); nil until SetPolicy

	mu         sync.Mutex
	blobs      map[blobKey]*Blob // blobs with open users, or being closed
	onMismatch []func(digest.Digest)
	onCommit   []func(ocispec.Descriptor)
}

// blobKey names an open blob. Two descriptors that share a digest but
// claim different sizes are different blobs: at most one is real.
type blobKey struct {
	digest digest.Digest
	size   int64
}

// DefaultRoot returns the cache directory used when none is given:
// $IMGFS_CACHE_DIR, else $XDG_CACHE_HOME/imgfs, else ~/.cache/imgfs. With
// none of them to be had, its error wraps ErrDirUnusable.
func DefaultRoot() (string, error) {
	if dir := os.Getenv("IMGFS_CACHE_DIR"); dir != "" {
		return dir, nil
	}
	if dir := os.Getenv("XDG_CACHE_HOME"); dir != "" {
		return filepath.Join(dir, "imgfs"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", &dirError{err: err}
	}
	return filepath.Join(home, ".cache", "imgfs"), nil
}

// Open opens the cache at root, creating the layout with mode 0700 if it is
// missing, and sweeps what dead processes left in ingest/. If root cannot
// be created, written or renamed in, the error names it and the cause, and
// wraps ErrDirUnusable.
func Open(root string, opts Options) (*Store, error) {
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = DefaultChunkSize
	}
	if opts.FetchTimeout <= 0 {
		opts.FetchTimeout = DefaultFetchTimeout
	}
	if opts.MaxConnections <= 0 {
		opts.MaxConnections = DefaultMaxConnections
	}
	if opts.Readahead <= 0 {
		opts.Readahead = DefaultReadahead
	}
	if opts.Verify != VerifyLazy && opts.Verify != VerifyStrict {
		return nil, fmt.Errorf("cache: unknown verify mode %d", opts.Verify)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("cache directory %s: %w", root, err)
	}
	life, shutdown := context.WithCancel(context.Background())
	s := &Store{
		life:     life,
		shutdown: shutdown,
		root:     abs,
		opts:     opts,
		log:      opts.Logger,
		now:      time.Now,
		hooks:    realHooks(),
		slots:    make(chan struct{}, opts.MaxConnections),

		streamPause: defaultStreamPause,
		prefetching: make(chan struct{}, prefetchParallel),
		blobs:       make(map[blobKey]*Blob),
	}
	if err := s.initLayout(); err != nil {
		shutdown()
		return nil, &dirError{dir: abs, err: unwrapPathError(err)}
	}
	s.sweep()
	return s, nil
}

// unwrapPathError drops the path from an *os.PathError whose path the
// message already names, to keep errors on one short line.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Root returns the cache directory.
func (s *Store) Root() string { return s.root }

// Options returns the options in force, defaults filled in.
func (s *Store) Options() Options { return s.opts }

// Exists reports whether the complete blob is in the cache. Committed blobs
// were verified on the way in, so only the size is checked here.
func (s *Store) Exists(desc ocispec.Descriptor) bool {
	path, err := s.blobPath(desc.Digest)
	if err != nil || desc.Size < 0 {
		return false
	}
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Size() == desc.Size
}

// CompletePath returns the path of the complete blob, if the cache has it.
func (s *Store) CompletePath(desc ocispec.Descriptor) (string, bool) {
	if !s.Exists(desc) {
		return "", false
	}
	path, _ := s.blobPath(desc.Digest)
	return path, true
}

// Go runs fn in the background under the store: fn's context is cancelled
// when the store is closed, and Close waits for fn to return. Once the
// store is closing it refuses with ErrClosed.
func (s *Store) Go(fn func(ctx context.Context)) error {
	if !s.work.join() {
		return ErrClosed
	}
	go func() {
		defer s.work.leave()
		fn(s.life)
	}()
	return nil
}

// OnMismatch registers fn to be told of each blob whose fetched bytes
// failed verification and were dropped, or were set aside unverified when
// another process committed the blob, so that copies of them elsewhere
// (such as the kernel's page cache) can be dropped too. fn is called from
// a goroutine of its own, with no lock held.
func (s *Store) OnMismatch(fn func(digest.Digest)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onMismatch = append(s.onMismatch, fn)
}

// OnCommit registers fn to be told of each blob that a reader, a fill or a
// prefetch verified and committed, so that what was taken on trust while
// the blob was partial can be checked against its verified bytes. fn is
// called from a goroutine of its own, with no lock held.
func (s *Store) OnCommit(fn func(ocispec.Descriptor)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onCommit = append(s.onCommit, fn)
}

func (s *Store) notifyCommit(desc ocispec.Descriptor) {
	s.mu.Lock()
	fns := s.onCommit
	s.mu.Unlock()
	if len(fns) == 0 {
		return
	}
	// Refused only when closing, when no one is left to tell.
	_ = s.Go(func(context.Context) {
		for _, fn := range fns {
			fn(desc)
		}
	})
}

func (s *Store) notifyMismatch(d digest.Digest) {
	s.mu.Lock()
	fns := s.onMismatch
	s.mu.Unlock()
	if len(fns) == 0 {
		return
	}
	// Refused only when closing, when no one is left to tell.
	_ = s.Go(func(context.Context) {
		for _, fn := range fns {
			fn(d)
		}
	})
}

// Close cancels fetches in flight and waits for every background goroutine
// to finish, so that partial blobs are saved in a consistent state.
func (s *Store) Close() error {
	s.work.close()
	s.shutdown()
	s.work.wait()
	return nil
}

func (s *Store) closing() bool { return s.life.Err() != nil }

// workGroup counts the goroutines a Store runs. join refuses once close has
// been called, so that wait, which follows close, never races an Add. Its
// mutex is a leaf: nothing else is locked while it is held.
type workGroup struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func (g *workGroup) join() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Add(1)
	return true
}

func (g *workGroup) leave() { g.wg.Done() }

func (g *workGroup) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

func (g *workGroup) wait() { g.wg.Wait() }
