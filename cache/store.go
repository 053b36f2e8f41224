package cache

import (
	"context"
	_ "crypto/sha256" // registers sha256 for go-digest
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Defaults for Options fields left zero.
const (
	DefaultChunkSize      = 1 << 20
	DefaultFetchTimeout   = 30 * time.Second
	DefaultMaxConnections = 8
	DefaultReadahead      = 64 << 20
)

// Options tune how a Store fetches missing bytes.
type Options struct {
	// ChunkSize is the unit of lazy fetching and of the present-range
	// bookkeeping. A random 4 KiB read pulls one chunk.
	ChunkSize int64

	// FetchTimeout bounds how long a read waits for missing bytes, and how
	// long a fetch may go without receiving any.
	FetchTimeout time.Duration

	// MaxConnections bounds the range requests in flight at once.
	MaxConnections int

	// Readahead is the largest window fetched ahead of a sequential reader.
	Readahead int64

	Logger *slog.Logger
}

// Store is a cache directory. One Store may serve many mounts and fetches
// in one process; several processes may share a directory.
type Store struct {
	root  string
	opts  Options
	log   *slog.Logger
	slots chan struct{} // one token per range request in flight

	prefetching chan struct{} // one token per blob being prefetched
	stats       counters
	bg          sync.WaitGroup // background fetches and hashing

	// life ends when the store is closed; fetches derive from it so that
	// Close does not wait out a stalled registry.
	life     context.Context
	shutdown context.CancelFunc

	mu    sync.Mutex
	blobs map[digest.Digest]*Blob // lazily read blobs with open users
}

// DefaultRoot returns the cache directory used when none is given:
// $IMGFS_CACHE_DIR, else $XDG_CACHE_HOME/imgfs, else ~/.cache/imgfs.
func DefaultRoot() (string, error) {
	if dir := os.Getenv("IMGFS_CACHE_DIR"); dir != "" {
		return dir, nil
	}
	if dir := os.Getenv("XDG_CACHE_HOME"); dir != "" {
		return filepath.Join(dir, "imgfs"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory: set --cache-dir or IMGFS_CACHE_DIR: %w", err)
	}
	return filepath.Join(home, ".cache", "imgfs"), nil
}

// Open opens the cache at root, creating the layout with mode 0700 if it is
// missing. It fails with a clear message if root cannot be written.
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
		slots:    make(chan struct{}, opts.MaxConnections),

		prefetching: make(chan struct{}, prefetchParallel),
		blobs:       make(map[digest.Digest]*Blob),
	}
	if err := s.initLayout(); err != nil {
		return nil, fmt.Errorf("cache directory %s is not usable (set --cache-dir or IMGFS_CACHE_DIR): %w", abs, unwrapPathError(err))
	}
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

func (s *Store) blobPath(d digest.Digest) string {
	return filepath.Join(s.root, "blobs", d.Algorithm().String(), d.Encoded())
}

func (s *Store) ingestPath(d digest.Digest, suffix string) string {
	return filepath.Join(s.root, "ingest", d.Algorithm().String()+"-"+d.Encoded()+suffix)
}

// Exists reports whether the complete blob is in the cache. Committed blobs
// were verified on the way in, so only the size is checked here.
func (s *Store) Exists(desc ocispec.Descriptor) bool {
	fi, err := os.Stat(s.blobPath(desc.Digest))
	return err == nil && fi.Mode().IsRegular() && fi.Size() == desc.Size
}

// CompletePath returns the path of the complete blob, if the cache has it.
func (s *Store) CompletePath(desc ocispec.Descriptor) (string, bool) {
	if !s.Exists(desc) {
		return "", false
	}
	return s.blobPath(desc.Digest), true
}

// Close cancels fetches in flight and waits for them and for hashing to
// finish, so that partial blobs are saved in a consistent state.
func (s *Store) Close() error {
	s.shutdown()
	s.bg.Wait()
	return nil
}
