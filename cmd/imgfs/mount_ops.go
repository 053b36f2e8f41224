package main

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/cache/gc"
	"github.com/imgfs/imgfs/fetch"
	"github.com/imgfs/imgfs/fusefs"
	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/oci"
)

// mountOps is what a mount does for its operator: a pin on the blobs it
// may read, so that prune in any process leaves them; the cache cap;
// metrics; and the per-blob part of .imgfs/stats.json.
type mountOps struct {
	store       *cache.Store
	lru         *gc.LRU
	img         fusefs.Image
	pin         *gc.Pin
	fm          *fetchMetrics
	reads       map[digest.Digest]*atomic.Int64 // FUSE reads per blob; read-only map
	server      atomic.Pointer[fusefs.Server]
	stopMetrics func()
	maxSize     int64
}

// startMountOps pins img's blobs, applies --cache-max-size and starts the
// metrics endpoint, and returns fetcher wrapped in the metrics' counters.
func startMountOps(g *globalFlags, f *mountFlags, store *cache.Store, lru *gc.LRU, ref fetch.Reference, img fusefs.Image, fetcher blobio.Fetcher) (*mountOps, blobio.Fetcher, error) {
	o := &mountOps{store: store, lru: lru, img: img, fm: newFetchMetrics(), reads: map[digest.Digest]*atomic.Int64{}}
	digests := []digest.Digest{img.Root.Digest}
	if img.RegistryRoot != nil {
		digests = append(digests, img.RegistryRoot.Digest)
	}
	for _, d := range img.Blobs {
		digests = append(digests, d.Digest)
		o.reads[d.Digest] = new(atomic.Int64)
	}
	var err error
	if o.pin, err = gc.NewPin(store, []string{ref.String()}, validDigests(digests)); err != nil {
		return nil, nil, err
	}
	o.maxSize, _ = f.cacheOptions.maxSizeBytes()
	if err := f.cacheOptions.applyCap(lru, o.pin, f.offline); err != nil {
		o.close()
		return nil, nil, err
	}
	if f.metricsAddress != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(o.fm.duration, o.fm.errors,
			&mountCollector{store: store, lru: lru, server: o.server.Load, fm: o.fm, log: g.logger},
			collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		if o.stopMetrics, err = serveMetrics(f.metricsAddress, reg, g.logger); err != nil {
			o.close()
			return nil, nil, usageError{err}
		}
	}
	return o, o.fm.fetcher(fetcher), nil
}

// validDigests drops digests the cache would refuse, such as an OCI view's
// synthesized root that the cache never holds.
func validDigests(ds []digest.Digest) []digest.Digest {
	out := ds[:0]
	for _, d := range ds {
		if oci.CheckDigest(d) == nil {
			out = append(out, d)
		}
	}
	return out
}

// mounted gives the collector the server's counters.
func (o *mountOps) mounted(s *fusefs.Server) { o.server.Store(s) }

func (o *mountOps) close() {
	if o.stopMetrics != nil {
		o.stopMetrics()
	}
	if err := o.pin.Release(); err != nil {
		o.store.Options().Logger.Warn("releasing the mount's pin", "error", err)
	}
}

// blobs wraps the mount's blob source: reads are counted per blob, and a
// passthrough open, which the cache never sees, still notes the blob's use.
func (o *mountOps) blobs(b fusefs.Blobs) fusefs.Blobs { return opsBlobs{b, o} }

type opsBlobs struct {
	fusefs.Blobs
	o *mountOps
}

func (b opsBlobs) Open(desc ocispec.Descriptor) (fusefs.BlobReader, error) {
	r, err := b.Blobs.Open(desc)
	if err != nil {
		return nil, err
	}
	if n := b.o.reads[desc.Digest]; n != nil {
		return countedReader{r, n}, nil
	}
	return r, nil
}

func (b opsBlobs) CompletePath(desc ocispec.Descriptor) (string, bool) {
	path, ok := b.Blobs.CompletePath(desc)
	if ok {
		gc.NoteUse(b.o.store, desc)
	}
	return path, ok
}

type countedReader struct {
	fusefs.BlobReader
	n *atomic.Int64
}

func (r countedReader) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	r.n.Add(1)
	return r.BlobReader.ReadAt(ctx, p, off)
}

// ReadLend lends where the wrapped reader can.
func (r countedReader) ReadLend(ctx context.Context, p []byte, off int64) ([][]byte, func(), int, error) {
	if l, ok := r.BlobReader.(fusefs.LendingReader); ok {
		r.n.Add(1)
		return l.ReadLend(ctx, p, off)
	}
	n, err := r.ReadAt(ctx, p, off)
	return nil, nil, n, err
}

// blobStat is one blob's row in .imgfs/stats.json.
type blobStat struct {
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"media_type"`
	Size      int64         `json:"size"`
	State     string        `json:"state"`
	Present   int64         `json:"present"`
	Reads     int64         `json:"reads"`
}

// opsStats is the "cache" part of stats.json with the mount's blobs and
// the cap's figures added.
type opsStats struct {
	withViewStats
	FetchedBytes int64      `json:"registry_bytes"`
	FetchRetries int64      `json:"fetch_retries"`
	CacheMaxSize int64      `json:"cache_max_size,omitempty"`
	Evictions    int64      `json:"evictions"`
	Blobs        []blobStat `json:"blobs"`
}

// stats extends base with the mount's blobs.
func (o *mountOps) stats(base withViewStats) any {
	s := opsStats{withViewStats: base, FetchedBytes: o.fm.fetchedBytes.Load(), FetchRetries: o.fm.retries.Load(),
		CacheMaxSize: o.maxSize, Evictions: o.lru.Evictions(), Blobs: []blobStat{}}
	for _, d := range o.img.Blobs {
		state, present := o.store.BlobProgress(d)
		var reads int64
		if n := o.reads[d.Digest]; n != nil {
			reads = n.Load()
		}
		s.Blobs = append(s.Blobs, blobStat{Digest: d.Digest, MediaType: d.MediaType, Size: d.Size, State: state, Present: present, Reads: reads})
	}
	return s
}

// applyCap sets --cache-max-size on the cache's LRU policy. The process's
// own pin, if any, does not keep its blobs from eviction, since it fetches
// again what it evicts; an offline process cannot, so its pin keeps them.
func (c cacheOptions) applyCap(lru *gc.LRU, own *gc.Pin, offline bool) error {
	n, err := c.maxSizeBytes()
	if err != nil || n == 0 {
		return err
	}
	var opts gc.CapOptions
	if own != nil && !offline {
		opts.OwnPins = []*gc.Pin{own}
	}
	lru.SetMaxSize(n, opts)
	return nil
}

// maxSizeBytes parses --cache-max-size; 0 means no cap.
func (c cacheOptions) maxSizeBytes() (int64, error) {
	if c.maxSize == "" {
		return 0, nil
	}
	n, err := parseSize(c.maxSize)
	if err != nil {
		return 0, usageError{fmt.Errorf("--cache-max-size: %w", err)}
	}
	if n == 0 {
		return 0, usageError{fmt.Errorf("--cache-max-size 0: want a positive size, such as 10GiB")}
	}
	return n, nil
}
