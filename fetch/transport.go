package fetch

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"sync"
	"time"

	"github.com/imgfs/imgfs/fetch/hosts"
)

// TransportOptions say how to reach registries.
type TransportOptions struct {
	// PlainHTTP talks HTTP instead of HTTPS to every registry.
	PlainHTTP bool
	// SkipVerify accepts any TLS certificate.
	SkipVerify bool
	// TLSCACert names a PEM file of extra CAs to trust.
	TLSCACert string
	// HTTPTrace logs DNS, connect, TLS and first-byte timings at debug level.
	HTTPTrace bool
	// IdleTimeout bounds how long any request waits for the registry: for
	// the response headers once the request is sent, and for each read of
	// a body (manifests, blobs, tokens and error bodies alike). The clock
	// runs only while imgfs waits on the registry, so a slow reader of the
	// body is not taken for a stalled registry. Zero means
	// defaultIdleTimeout.
	IdleTimeout time.Duration
	Logger      *slog.Logger
}

// defaultIdleTimeout is the IdleTimeout when none is given.
const defaultIdleTimeout = 30 * time.Second

// newHostTransport builds the HTTP transport under oras' auth and retry
// layers for one host: the options' TLS settings amended by the host's
// own (hosts.toml ca, client, skip_verify) and its dial timeout. It keeps
// enough idle connections per host for parallel range requests, and never
// asks for transparent compression: blob bytes must arrive exactly as
// stored.
func newHostTransport(opts TransportOptions, h hosts.Host) (http.RoundTripper, *schemeTransport, error) {
	tlsConfig := &tls.Config{InsecureSkipVerify: opts.SkipVerify}
	if opts.TLSCACert != "" {
		pem, err := os.ReadFile(opts.TLSCACert)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrCACertificates, err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("%w %s: no PEM certificates found", ErrCACertificates, opts.TLSCACert)
		}
		tlsConfig.RootCAs = pool
	}
	if h.HasTLSConfig() {
		tlsConfig = h.ApplyTLS(tlsConfig)
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.TLSClientConfig = tlsConfig
	if h.DialTimeout > 0 {
		base.DialContext = (&net.Dialer{Timeout: h.DialTimeout, KeepAlive: 30 * time.Second}).DialContext
	}
	base.MaxIdleConnsPerHost = 32
	base.DisableCompression = true
	base.ReadBufferSize = 64 << 10
	idle := opts.IdleTimeout
	if idle <= 0 {
		idle = defaultIdleTimeout
	}
	base.ResponseHeaderTimeout = idle
	// A silent TLS handshake is a stall like silent headers: the same
	// bound, so that the stall error's "no response for" is the truth
	// (net/http's default would cut it at 10 s).
	base.TLSHandshakeTimeout = idle
	var rt http.RoundTripper = &idleTransport{base: base, timeout: idle}
	// PlainHTTP is for the registry; a mirror's URL says its scheme.
	st := &schemeTransport{base: rt, plain: opts.PlainHTTP && !h.Mirror, fallback: map[string]bool{}}
	rt = st
	if opts.HTTPTrace && opts.Logger != nil {
		rt = &traceTransport{base: rt, log: opts.Logger}
	}
	return rt, st, nil
}

// schemeTransport decides between HTTPS and HTTP per host. With PlainHTTP
// everything is HTTP. A loopback registry is tried over HTTPS first and,
// when it answers in plain HTTP, remembered as plain: the rule containerd
// and docker apply to localhost.
type schemeTransport struct {
	base  http.RoundTripper
	plain bool

	mu       sync.Mutex
	fallback map[string]bool
}

func (t *schemeTransport) RoundTrip(orig *http.Request) (*http.Response, error) {
	req := orig
	host := req.URL.Host
	t.mu.Lock()
	plain := t.plain || t.fallback[host]
	t.mu.Unlock()
	if plain && req.URL.Scheme == "https" {
		req = withScheme(req, "http")
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil && req.URL.Scheme == "https" && isLoopback(req.URL.Hostname()) && isPlainHTTPReply(err) {
		t.mu.Lock()
		t.fallback[host] = true
		t.mu.Unlock()
		resp, err = t.base.RoundTrip(withScheme(req, "http"))
	}
	if resp != nil {
		// Answer for the request as it was made. oras' auth client
		// sends credentials only to the origin of the request it made,
		// and would take an http answer to an https request for a
		// redirect to another origin.
		resp.Request = orig
	}
	return resp, err
}

// isPlain reports whether requests to host go over plain HTTP.
func (t *schemeTransport) isPlain(host string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.plain || t.fallback[host]
}

func withScheme(req *http.Request, scheme string) *http.Request {
	r := req.Clone(req.Context())
	r.URL.Scheme = scheme
	return r
}

// isPlainHTTPReply reports whether a TLS handshake failed because the
// server spoke plain HTTP.
func isPlainHTTPReply(err error) bool {
	var rhe tls.RecordHeaderError
	return errors.As(err, &rhe) && string(rhe.RecordHeader[:]) == "HTTP/"
}

// isLoopback reports whether host is localhost or a loopback address.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// traceTransport logs where the time of each request goes.
type traceTransport struct {
	base http.RoundTripper
	log  *slog.Logger
}

func (t *traceTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	since := func() time.Duration { return time.Since(start).Round(time.Microsecond) }
	// The URL goes without its query: a signed redirect carries its
	// credentials there. Headers, Authorization among them, never go.
	l := t.log.With("method", req.Method, "url", redactURL(req.URL))
	trace := &httptrace.ClientTrace{
		DNSDone: func(i httptrace.DNSDoneInfo) { l.Debug("http trace: dns done", "after", since(), "error", i.Err) },
		ConnectDone: func(network, addr string, err error) {
			l.Debug("http trace: connected", "addr", addr, "after", since(), "error", err)
		},
		GotConn: func(i httptrace.GotConnInfo) { l.Debug("http trace: got conn", "reused", i.Reused, "after", since()) },
		TLSHandshakeDone: func(s tls.ConnectionState, err error) {
			l.Debug("http trace: tls done", "proto", s.NegotiatedProtocol, "after", since(), "error", err)
		},
		GotFirstResponseByte: func() { l.Debug("http trace: first byte", "after", since()) },
	}
	resp, err := t.base.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
	if err != nil {
		l.Debug("http trace: failed", "after", since(), "error", redactQueries(err.Error()))
	} else {
		l.Debug("http trace: response", "status", resp.StatusCode, "range", req.Header.Get("Range"), "after", since())
	}
	return resp, err
}
