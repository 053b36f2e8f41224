package imagemount

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/fetch"
	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/errdefs"
)

// fetchCounters counts what a mount asks of its registry, from the source
// the cache fetches through: every blob byte that arrives, each range
// request and how long it took, the ones re-sent after a failure, and the
// failures by kind. It sits outside the cache, so the cache's hot path
// gains nothing; retries inside the HTTP transport (oras' policy) are not
// seen here and not counted.
type fetchCounters struct {
	fetchedBytes  atomic.Int64
	rangeRequests atomic.Int64
	retries       atomic.Int64
	duration      prometheus.Histogram
	errors        *prometheus.CounterVec

	mu     sync.Mutex
	failed map[string]bool // digests whose last request failed
}

// FetchErrorKinds is the closed set of values of imgfs_fetch_errors_total's
// kind label: every one is exported, at 0 until it happens.
var FetchErrorKinds = []string{"timeout", "not_found", "unauthorized", "unreachable", "tls", "status", "permanent", "size", "network", "other"}

func newFetchCounters() *fetchCounters {
	m := &fetchCounters{
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
	for _, k := range FetchErrorKinds {
		m.errors.WithLabelValues(k) // every kind shows, at 0
	}
	return m
}

// errorKind sorts a fetch error into FetchErrorKinds; "" means it is not
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

// wrap wraps r, which may be nil (offline), in the counters.
func (m *fetchCounters) wrap(r *fetch.Remote) blobio.Fetcher {
	if r == nil {
		return nil
	}
	var f blobio.Fetcher = r
	return &countingFetcher{f: f, m: m}
}

type countingFetcher struct {
	f blobio.Fetcher
	m *fetchCounters
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
func (m *fetchCounters) track(ctx context.Context, desc ocispec.Descriptor, body io.ReadCloser, err error, ranged bool) (io.ReadCloser, error) {
	t := &trackedBody{ReadCloser: body, m: m, ctx: ctx, digest: string(desc.Digest), start: time.Now(), ranged: ranged}
	if err != nil {
		t.finish(err)
		return nil, err
	}
	return t, nil
}

type trackedBody struct {
	io.ReadCloser
	m      *fetchCounters
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
