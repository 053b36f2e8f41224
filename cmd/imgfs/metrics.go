package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/cache/gc"
	"github.com/imgfs/imgfs/fetch"
	"github.com/imgfs/imgfs/fusefs"
	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/errdefs"
)

// fetchMetrics counts what a mount asks of its registry, from the source
// the cache fetches through: every blob byte that arrives, each range
// request and how long it took, the ones re-sent after a failure, and the
// failures by kind. It sits outside the cache, so the cache's hot path
// gains nothing; retries inside the HTTP transport (oras' policy) are not
// seen here and not counted.
type fetchMetrics struct {
	fetchedBytes  atomic.Int64
	rangeRequests atomic.Int64
	retries       atomic.Int64
	duration      prometheus.Histogram
	errors        *prometheus.CounterVec

	mu     sync.Mutex
	failed map[string]bool // digests whose last request failed
}

// fetchErrorKinds is the closed set of the kind label.
var fetchErrorKinds = []string{"timeout", "not_found", "unauthorized", "unreachable", "tls", "status", "permanent", "size", "network", "other"}

func newFetchMetrics() *fetchMetrics {
	m := &fetchMetrics{
		failed: map[string]bool{},
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "imgfs_range_request_duration_seconds",
			Help:    "Time from sending a blob range request to the end of its body.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imgfs_fetch_errors_total",
			Help: "Blob fetches that failed, by kind.",
		}, []string{"kind"}),
	}
	for _, k := range fetchErrorKinds {
		m.errors.WithLabelValues(k) // every kind shows, at 0
	}
	return m
}

// errorKind sorts a fetch error into fetchErrorKinds; "" means it is not
// a failure of the source (the fetch was cancelled by the cache).
func errorKind(ctx context.Context, err error) string {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
		err = cause
	}
	switch {
	case errors.Is(err, errdefs.ErrFetchTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled), errors.Is(err, cache.ErrClosed):
		return ""
	case errors.Is(err, fetch.ErrNotFound):
		return "not_found"
	case errors.Is(err, fetch.ErrUnauthorized):
		return "unauthorized"
	case errors.Is(err, fetch.ErrUnreachable):
		return "unreachable"
	case errors.Is(err, fetch.ErrUntrustedTLS):
		return "tls"
	case errors.Is(err, fetch.ErrUnexpectedStatus):
		return "status"
	case errors.Is(err, errdefs.ErrPermanent):
		return "permanent"
	case errors.Is(err, errdefs.ErrSizeMismatch), errors.Is(err, io.ErrUnexpectedEOF):
		return "size"
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return "network"
	}
	return "other"
}

// fetcher wraps f, which may be nil (offline), in the counters.
func (m *fetchMetrics) fetcher(f blobio.Fetcher) blobio.Fetcher {
	if f == nil {
		return nil
	}
	return &countingFetcher{f: f, m: m}
}

type countingFetcher struct {
	f blobio.Fetcher
	m *fetchMetrics
}

// Source names the wrapped fetcher in the cache's logs.
func (c *countingFetcher) Source() string {
	if s, ok := c.f.(interface{ Source() string }); ok {
		return s.Source()
	}
	return fmt.Sprintf("%T", c.f)
}

func (c *countingFetcher) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	body, err := c.f.Fetch(ctx, desc)
	return c.m.track(ctx, desc, body, err, false)
}

func (c *countingFetcher) FetchRange(ctx context.Context, desc ocispec.Descriptor, off, n int64) (io.ReadCloser, error) {
	c.m.rangeRequests.Add(1)
	c.m.mu.Lock()
	if c.m.failed[string(desc.Digest)] {
		c.m.retries.Add(1)
	}
	c.m.mu.Unlock()
	body, err := c.f.FetchRange(ctx, desc, off, n)
	var whole *blobio.WholeBlob
	if errors.As(err, &whole) {
		// Not a failure: the cache streams the whole answer, whose bytes
		// count like any others.
		tracked, _ := c.m.track(ctx, desc, whole.Body, nil, true)
		return nil, &blobio.WholeBlob{Body: tracked}
	}
	return c.m.track(ctx, desc, body, err, true)
}

// track counts body's bytes as they are read, and at its end the outcome
// and, for a range request, its duration.
func (m *fetchMetrics) track(ctx context.Context, desc ocispec.Descriptor, body io.ReadCloser, err error, ranged bool) (io.ReadCloser, error) {
	t := &trackedBody{ReadCloser: body, m: m, ctx: ctx, digest: string(desc.Digest), start: time.Now(), ranged: ranged}
	if err != nil {
		t.finish(err)
		return nil, err
	}
	return t, nil
}

type trackedBody struct {
	io.ReadCloser
	m      *fetchMetrics
	ctx    context.Context
	digest string
	start  time.Time
	ranged bool
	once   sync.Once
}

func (t *trackedBody) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	t.m.fetchedBytes.Add(int64(n))
	if err != nil && err != io.EOF {
		t.finish(err)
	}
	return n, err
}

func (t *trackedBody) Close() error {
	t.finish(nil)
	return t.ReadCloser.Close()
}

// finish records the request once: its duration, and whether it failed.
func (t *trackedBody) finish(err error) {
	t.once.Do(func() {
		if t.ranged {
			t.m.duration.Observe(time.Since(t.start).Seconds())
		}
		kind := ""
		if err != nil {
			kind = errorKind(t.ctx, err)
		}
		t.m.mu.Lock()
		defer t.m.mu.Unlock()
		switch {
		case kind != "":
			t.m.errors.WithLabelValues(kind).Inc()
			t.m.failed[t.digest] = true
		case err == nil:
			delete(t.m.failed, t.digest)
		}
	})
}

// mountCollector reads the cache's and the filesystem's own counters at
// scrape time, so serving metrics adds no bookkeeping to reads.
type mountCollector struct {
	store  *cache.Store
	lru    *gc.LRU
	server func() *fusefs.Server // nil until mounted
	fm     *fetchMetrics
	log    *slog.Logger
}

var (
	descFetched     = prometheus.NewDesc("imgfs_fetched_bytes_total", "Blob bytes received from registries.", nil, nil)
	descServed      = prometheus.NewDesc("imgfs_served_bytes_total", "Bytes served to readers by FUSE READs from the cache; passthrough reads are the kernel's and not counted.", nil, nil)
	descRanges      = prometheus.NewDesc("imgfs_range_requests_total", "Blob range requests sent.", nil, nil)
	descRetries     = prometheus.NewDesc("imgfs_fetch_retries_total", "Range requests for a blob whose previous request failed.", nil, nil)
	descMismatches  = prometheus.NewDesc("imgfs_digest_mismatches_total", "Blobs whose fetched bytes failed verification and were dropped.", nil, nil)
	descOpenBlobs   = prometheus.NewDesc("imgfs_open_blobs", "Blobs open in the cache by readers of this process.", nil, nil)
	descPassthrough = prometheus.NewDesc("imgfs_passthrough_opens_total", "Opens the kernel serves by FUSE passthrough from the cache file.", nil, nil)
	descOpens       = prometheus.NewDesc("imgfs_opens_total", "Opens of blobs through the mount.", nil, nil)
	descCacheSize   = prometheus.NewDesc("imgfs_cache_size_bytes", "Disk use of the cache directory, by part.", []string{"part"}, nil)
	descEvictions   = prometheus.NewDesc("imgfs_evictions_total", "Blobs evicted to keep the cache under --cache-max-size.", nil, nil)
	descCommits     = prometheus.NewDesc("imgfs_commits_total", "Blobs verified and committed to the cache.", nil, nil)
)

func (c *mountCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descFetched, descServed, descRanges, descRetries, descMismatches, descOpenBlobs,
		descPassthrough, descOpens, descCacheSize, descEvictions, descCommits} {
		ch <- d
	}
}

func (c *mountCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	st := c.store.Stats()
	counter(descFetched, float64(c.fm.fetchedBytes.Load()))
	counter(descRanges, float64(c.fm.rangeRequests.Load()))
	counter(descRetries, float64(c.fm.retries.Load()))
	counter(descMismatches, float64(st.DigestMismatches))
	counter(descCommits, float64(st.Commits))
	counter(descEvictions, float64(c.lru.Evictions()))
	ch <- prometheus.MustNewConstMetric(descOpenBlobs, prometheus.GaugeValue, float64(st.OpenBlobs))
	var fs fusefs.Stats
	if srv := c.server(); srv != nil {
		fs = srv.Stats()
	}
	counter(descServed, float64(fs.ReadBytes))
	counter(descPassthrough, float64(fs.PassthroughOpens))
	counter(descOpens, float64(fs.Opens))
	u, err := gc.DiskUsage(c.store)
	if err != nil {
		c.log.Warn("metrics: cannot measure the cache", "error", err)
		return
	}
	for part, n := range map[string]int64{"complete": u.Complete, "partial": u.Partial, "indexes": u.Indexes, "files": u.Files, "logs": u.Logs, "other": u.Other} {
		ch <- prometheus.MustNewConstMetric(descCacheSize, prometheus.GaugeValue, float64(n), part)
	}
}

// serveMetrics listens on addr and serves reg at /metrics until close is
// called. Listening comes first, so a bad address fails the mount.
func serveMetrics(addr string, reg *prometheus.Registry, log *slog.Logger) (close func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-address %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "error", err)
		}
	}()
	log.Info("serving metrics", "address", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}
