package imagemount

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/cache/gc"
	"github.com/imgfs/imgfs/fetch"
	"github.com/imgfs/imgfs/fusefs"
	"github.com/imgfs/imgfs/internal/layer"
)

// Options say what to mount and how.
type Options struct {
	// Ref is the image to mount.
	Ref fetch.Reference
	// Remote is the registry client for Ref's repository. Nil mounts from
	// the cache alone: the metadata must be there, and reads of layer
	// bytes the cache lacks fail.
	Remote *fetch.Remote
	// Platforms are the platforms to mount, the first preferred; none
	// means the host's. AllPlatforms mounts every platform of an index.
	Platforms    []ocispec.Platform
	AllPlatforms bool
	// Index says which layer indexes published in the registry (SOCI) to
	// look for before indexing a gzip layer with a pass.
	Index IndexMode
	// Prefetch fills every layer in the background after mounting, below
	// reads.
	Prefetch bool
	// MaxCacheSize caps the cache's disk use while mounted; 0 means no cap.
	MaxCacheSize int64
	// MaxEntries caps the entries of each layer's index (0:
	// DefaultMaxLayerEntries); a layer with more is broken. It is
	// internal/layer's cap, which is process-wide: the last mount started
	// sets it.
	MaxEntries int
	// LRU is the store's cache/gc policy, which records last use and
	// enforces the cap. Nil installs a new one on the store.
	LRU *gc.LRU
	// FUSE are the filesystem's options. FsName defaults to Ref, Logger
	// to Logger; ExtraStats is the mount's own.
	FUSE fusefs.Options
	// Logger receives what the mount does; nil discards it.
	Logger *slog.Logger
}

// DefaultMaxLayerEntries is the default cap on the entries of one layer
// (Options.MaxEntries): internal/layer's.
const DefaultMaxLayerEntries = layer.DefaultMaxEntries

// Mount is one image, mounted. Its methods may be called from any
// goroutine.
type Mount struct {
	store  *cache.Store
	img    fusefs.Image
	server *fusefs.Server
	log    *slog.Logger

	hk      *housekeeping
	files   *layerFiles
	fetches *fetchCounters
	work    *workGroup
}

// ErrStopped means ctx ended while the metadata was being fetched, so
// nothing was mounted.
var ErrStopped = errors.New("stopped before mounting")

// Start mounts opts.Ref at mountpoint from store. It returns once the
// mount serves: the metadata is in the cache and layers are lazy; the
// configs the mount did not need, and with Prefetch the layers, are
// fetched in the background. ctx bounds only the set-up; Close ends the
// mount's work. On error nothing is left mounted or pinned.
func Start(ctx context.Context, store *cache.Store, mountpoint string, opts Options) (_ *Mount, err error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	layer.SetMaxEntries(opts.MaxEntries)
	img, err := resolve(ctx, store, opts)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("%w: fetching the metadata of %s stopped", ErrStopped, opts.Ref)
	}
	if err != nil {
		return nil, err
	}
	m := &Mount{store: store, img: img, log: log, fetches: newFetchCounters(), work: newWorkGroup()}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	lru := opts.LRU
	if lru == nil {
		lru = gc.NewLRU(store)
		store.SetPolicy(lru)
	}
	if m.hk, err = startHousekeeping(store, lru, opts.Ref, img, opts.MaxCacheSize, opts.Remote == nil, log); err != nil {
		return nil, err
	}
	fetcher := m.fetches.wrap(opts.Remote)
	m.files = newLayerFiles(store, fetcher, m.work, log)
	if opts.Remote != nil && opts.Index == IndexAuto {
		m.files.shared = newSOCIFinder(store, opts.Remote, fetcher, img.Root, layerOwners(img), !m.files.strict, log)
	}
	m.img.Files = m.files
	fo := opts.FUSE
	if fo.FsName == "" {
		fo.FsName = opts.Ref.String()
	}
	if fo.Logger == nil {
		fo.Logger = log
	}
	fo.ExtraStats = m.stats
	if m.server, err = fusefs.Mount(mountpoint, m.img, m.hk.blobs(blobSource{store: store, fetcher: fetcher}), fo); err != nil {
		return nil, err
	}
	store.OnMismatch(m.server.InvalidateBlob)
	if opts.Remote != nil {
		m.work.goLingering(func(ctx context.Context) { fetchConfigs(ctx, store, fetcher, opts.Ref.Name(), m.img, log) })
		if opts.Prefetch {
			m.work.goLingering(func(ctx context.Context) { prefetchLayers(ctx, store, fetcher, m.img, log) })
		}
	}
	return m, nil
}

// Image returns what the mount shows.
func (m *Mount) Image() fusefs.Image { return m.img }

// Wait returns once the filesystem is unmounted, by Unmount or from
// outside (imgfs unmount, umount).
func (m *Mount) Wait() { m.server.Wait() }

// Unmount unmounts the filesystem; it fails while files are open.
func (m *Mount) Unmount() error { return m.server.Unmount() }

// Collectors return the mount's Prometheus metrics: its fetches, and the
// cache's and the filesystem's counters read at scrape time.
func (m *Mount) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.fetches.duration, m.fetches.errors, &collector{m: m}}
}

// backgroundGrace is how long Close lets background work (the config
// fetch, prefetch) go on, so that an unmount right after mounting still
// leaves every config cached, without waiting out a stalled registry.
const backgroundGrace = 5 * time.Second

// Close ends the mount's background work, after a grace period for the
// fetches under way, and releases its pin. It does not unmount: call it
// once Wait has returned.
func (m *Mount) Close() error {
	m.work.close(backgroundGrace)
	if m.hk != nil {
		m.hk.close()
	}
	return nil
}
