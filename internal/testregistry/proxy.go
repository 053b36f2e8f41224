package testregistry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy is a reverse proxy on 127.0.0.1 in front of a registry. It counts
// the blob bytes it serves, logs every request, injects faults and serves
// canned responses, so tests can assert how much an operation fetched and
// how the code under test survives a misbehaving registry. All methods are
// safe to call concurrently with traffic.
type Proxy struct {
	ln        net.Listener
	srv       *http.Server
	rp        *httputil.ReverseProxy
	transport *http.Transport
	closing   chan struct{}
	closeOnce sync.Once
	drained   chan struct{} // closed when closing and no handler runs

	blobBytes    atomic.Int64
	blobRequests atomic.Int64
	bandwidth    atomic.Pointer[tokenBucket] // nil: unlimited

	mu        sync.Mutex
	inflight  int
	closed    bool
	fault     Fault
	faultLeft int
	overrides []override
	log       []*Request
}

// Request is one request the proxy received. It is logged on arrival and
// updated as the response goes out, before the client can see each part, so
// a test that has just read a response finds it complete in Requests.
// Status is 0 until headers are sent, and stays 0 when the connection was
// closed without a response (Down); Bytes counts the response body bytes
// sent.
type Request struct {
	Method string
	Path   string
	Range  string
	Status int
	Bytes  int64
	Header http.Header
}

type override struct {
	method string
	suffix string
	status int
	header http.Header
	body   []byte
}

// blobPath matches blob fetches, not uploads (/blobs/uploads/...).
var blobPath = regexp.MustCompile(`^/v2/.+/blobs/[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)

// faultKey carries a request's fault from ServeHTTP to ModifyResponse.
type faultKey struct{}

// closeWait bounds how long Close waits for in-flight requests; they all
// end promptly once connections are closed, but Close must never hang a
// test.
const closeWait = 5 * time.Second

// NewProxy starts a proxy to target, a registry host ("127.0.0.1:PORT") or
// URL. Callers must Close it.
func NewProxy(target string) (*Proxy, error) {
	if !strings.Contains(target, "://") {
		target = "http://" + target
	}
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("proxy target: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	quiet := log.New(io.Discard, "", 0)
	p := &Proxy{
		ln:      ln,
		closing: make(chan struct{}),
		drained: make(chan struct{}),
		transport: &http.Transport{
			DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			// Pass bodies through byte for byte: transparent gzip would
			// change lengths and break the byte counts.
			DisableCompression: true,
			// The default of 2 idle connections per host would make a
			// parallel fetcher churn connections behind the proxy.
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     30 * time.Second,
		},
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			// Keep the client's Host so that the registry's upload Location
			// URLs point back through the proxy.
			pr.Out.Host = pr.In.Host
		},
		Transport:      p.transport,
		ModifyResponse: p.modifyResponse,
		// Flush after every write: a stalled or reset body must have
		// delivered exactly its prefix, not left it in a buffer.
		FlushInterval: -1,
		BufferPool:    &bufferPool{},
		ErrorLog:      quiet,
	}
	p.srv = &http.Server{Handler: p, ErrorLog: quiet, ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(ln)
	return p, nil
}

// StartProxy starts a proxy to target for the test and closes it when the
// test ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	p, err := NewProxy(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// Host returns "127.0.0.1:PORT", for use in image references.
func (p *Proxy) Host() string { return p.ln.Addr().String() }

// Close stops the proxy: it ends stalls, closes the listener and every
// connection, and waits (bounded) for handlers to return. It is safe to call
// more than once.
func (p *Proxy) Close() error {
	var err error
	p.closeOnce.Do(func() {
		close(p.closing)
		p.mu.Lock()
		p.closed = true
		if p.inflight == 0 {
			close(p.drained)
		}
		p.mu.Unlock()
		err = p.srv.Close()
		select {
		case <-p.drained:
		case <-time.After(closeWait):
			err = errors.Join(err, errors.New("proxy close: requests still running"))
		}
		p.transport.CloseIdleConnections()
	})
	return err
}

// SetFault replaces the current fault; SetFault(None) clears it.
func (p *Proxy) SetFault(f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault, p.faultLeft = f, f.times
}

// Override makes the proxy answer requests with the given method ("" for
// any) whose path ends in pathSuffix with a canned response instead of
// asking the registry. header is sent as given (so the caller decides
// whether Docker-Content-Digest is present and right); Content-Length is
// set from body unless header has one. The latest matching override wins.
// Faults still apply to overridden responses.
func (p *Proxy) Override(method, pathSuffix string, status int, header http.Header, body []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.overrides = append(p.overrides, override{method, pathSuffix, status, header.Clone(), bytes.Clone(body)})
}

// ClearOverrides removes all overrides.
func (p *Proxy) ClearOverrides() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.overrides = nil
}

// BlobBytes returns the response body bytes sent for successful (200 or 206)
// GETs of /v2/<repo>/blobs/<digest> since the last ResetCounters.
func (p *Proxy) BlobBytes() int64 { return p.blobBytes.Load() }

// BlobRequests returns the number of GETs of /v2/<repo>/blobs/<digest>,
// whatever their outcome, since the last ResetCounters.
func (p *Proxy) BlobRequests() int64 { return p.blobRequests.Load() }

// Requests returns a snapshot of the request log since the last
// ResetCounters, in order of arrival.
func (p *Proxy) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Request, len(p.log))
	for i, r := range p.log {
		out[i] = *r
	}
	return out
}

// ResetCounters zeroes BlobBytes and BlobRequests and empties the request
// log, typically between the setup and the step a test measures. Requests
// still in flight keep adding their bytes to BlobBytes.
func (p *Proxy) ResetCounters() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blobBytes.Store(0)
	p.blobRequests.Store(0)
	p.log = nil
}

// ServeHTTP implements http.Handler: fault, then override, then proxy.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !p.enter() {
		return
	}
	defer p.leave()
	rec := &recorder{ResponseWriter: w, p: p, entry: p.record(r), ctx: r.Context()}
	if r.Method == http.MethodGet && blobPath.MatchString(r.URL.Path) {
		p.blobRequests.Add(1)
		rec.blob = true
	}

	f := p.takeFault(r)
	switch f.kind {
	case faultDown:
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			if tcp, ok := conn.(*net.TCPConn); ok {
				tcp.SetLinger(0) // RST rather than an orderly FIN
			}
			conn.Close()
		}
		return
	case faultStatus:
		rec.Header().Set("Content-Type", "application/json")
		rec.WriteHeader(f.code)
		fmt.Fprintf(rec, `{"errors":[{"code":"UNKNOWN","message":"testregistry proxy: injected status %d"}]}`+"\n", f.code)
		return
	}
	if o, ok := p.findOverride(r); ok {
		p.serveOverride(rec, r, o, f)
		return
	}
	p.rp.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), faultKey{}, f)))
}

// enter counts a handler in, unless the proxy is closing; Close waits for
// the count to reach zero.
func (p *Proxy) enter() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.inflight++
	return true
}

func (p *Proxy) leave() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inflight--
	if p.closed && p.inflight == 0 {
		close(p.drained)
	}
}

// takeFault returns the fault to apply to r, consuming one use of a
// Times-limited fault.
func (p *Proxy) takeFault(r *http.Request) Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.fault
	if f.kind == faultNone || !strings.Contains(r.URL.Path, f.match) {
		return None
	}
	if f.actsOnBody() && r.Method != http.MethodGet {
		return None
	}
	if f.times > 0 {
		if p.faultLeft == 0 {
			return None
		}
		p.faultLeft--
	}
	return f
}

// modifyResponse applies a body fault to the registry's response.
func (p *Proxy) modifyResponse(resp *http.Response) error {
	f, _ := resp.Request.Context().Value(faultKey{}).(Fault)
	if f.actsOnBody() {
		resp.Body = newFaultyBody(resp.Body, f, resp.ContentLength, resp.Request.Context(), p.closing)
	}
	return nil
}

func (p *Proxy) findOverride(r *http.Request) (override, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.overrides) - 1; i >= 0; i-- {
		o := p.overrides[i]
		if (o.method == "" || o.method == r.Method) && strings.HasSuffix(r.URL.Path, o.suffix) {
			return o, true
		}
	}
	return override{}, false
}

// serveOverride writes a canned response, through the same body faults as
// proxied ones.
func (p *Proxy) serveOverride(w *recorder, r *http.Request, o override, f Fault) {
	for k, v := range o.header {
		w.Header()[k] = slices.Clone(v)
	}
	if w.Header().Get("Content-Length") == "" {
		w.Header().Set("Content-Length", strconv.Itoa(len(o.body)))
	}
	w.WriteHeader(o.status)
	if r.Method == http.MethodHead {
		return
	}
	var body io.ReadCloser = io.NopCloser(bytes.NewReader(o.body))
	if f.actsOnBody() {
		body = newFaultyBody(body, f, int64(len(o.body)), r.Context(), p.closing)
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			w.Flush()
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			// As ReverseProxy does: abort the connection so the client sees
			// a truncated body, not a complete short one.
			panic(http.ErrAbortHandler)
		}
	}
}

// record adds r to the request log and returns its entry.
func (p *Proxy) record(r *http.Request) *Request {
	e := &Request{
		Method: r.Method,
		Path:   r.URL.Path,
		Range:  r.Header.Get("Range"),
		Header: r.Header.Clone(),
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = append(p.log, e)
	return e
}

// recorder is the ResponseWriter the proxy writes through. It updates the
// request's log entry and the blob byte counter *before* passing each part
// on: once the client holds a byte, the counters already include it.
type recorder struct {
	http.ResponseWriter
	p      *Proxy
	entry  *Request
	status int
	blob   bool // a blob GET, whose 2xx body bytes go to BlobBytes
	ctx    context.Context
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
		w.p.mu.Lock()
		w.entry.Status = code
		w.p.mu.Unlock()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	limit := w.p.bandwidth.Load()
	if limit == nil {
		return w.write(b)
	}
	// Under a bandwidth limit, send in chunks no larger than the burst,
	// each when the bucket allows it, flushed so it leaves at that pace
	// instead of piling up in a buffer.
	written := 0
	for written < len(b) {
		chunk := b[written:min(len(b), written+int(limit.burst))]
		if err := limit.wait(w.ctx, w.p.closing, int64(len(chunk))); err != nil {
			return written, err
		}
		n, err := w.write(chunk)
		written += n
		if err != nil {
			return written, err
		}
		w.Flush()
	}
	return written, nil
}

// write counts b and passes it on.
func (w *recorder) write(b []byte) (int, error) {
	w.count(int64(len(b)))
	n, err := w.ResponseWriter.Write(b)
	if n < len(b) {
		w.count(int64(n - len(b))) // take back what never left
	}
	return n, err
}

func (w *recorder) count(n int64) {
	w.p.mu.Lock()
	w.entry.Bytes += n
	w.p.mu.Unlock()
	if w.blob && (w.status == http.StatusOK || w.status == http.StatusPartialContent) {
		w.p.blobBytes.Add(n)
	}
}

// Flush lets ReverseProxy flush through the recorder.
func (w *recorder) Flush() {
	http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap exposes the underlying writer to http.ResponseController.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// bufferPool gives ReverseProxy 256 KiB copy buffers instead of 32 KiB
// ones, so a benchmark through the proxy is not dominated by per-write
// overhead.
type bufferPool struct{ pool sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.pool.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 256<<10)
}

func (b *bufferPool) Put(buf []byte) { b.pool.Put(&buf) }
