package testregistry

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// Hostile is a small registry on 127.0.0.1 whose answers are written by the
// test: manifests with lying descriptors, lying headers, bodies that stop
// half way. The real registry refuses to store such things, so they cannot
// be pushed to it; everything Hostile serves is set up with SetManifest and
// SetBlob. It speaks just enough of the /v2/ API for a pulling client: the
// ping, manifests by tag or digest, and blobs with Range support.
//
// Apart from the lie a scenario tells, answers are consistent: a manifest's
// Docker-Content-Digest is the digest of its bytes unless the scenario sets
// another, and blobs are served as exactly the bytes given.
type Hostile struct {
	ln        net.Listener
	srv       *http.Server
	closing   chan struct{}
	closeOnce sync.Once
	handlers  sync.WaitGroup

	mu    sync.Mutex
	repos map[string]*hostileRepo
}

// Answer is a crafted manifest response.
type Answer struct {
	// ContentType is sent as the Content-Type header.
	ContentType string
	// Body is the manifest or index as sent.
	Body []byte
	// Header holds extra headers. A Docker-Content-Digest here replaces
	// the true one; an empty value removes it.
	Header http.Header
	// StallAfter, when positive, sends the Content-Length of the whole
	// Body but only its first StallAfter bytes, then nothing more until
	// the client goes away or the registry is closed.
	StallAfter int
}

type hostileRepo struct {
	manifests map[string]Answer // by tag or digest, as in the URL
	blobs     map[string][]byte // by digest, as in the URL
	requests  int
}

// NewHostile starts a hostile registry with nothing in it. Callers must
// Close it.
func NewHostile() (*Hostile, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := &Hostile{ln: ln, closing: make(chan struct{}), repos: map[string]*hostileRepo{}}
	h.srv = &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0), ReadHeaderTimeout: 10 * time.Second}
	go h.srv.Serve(ln)
	return h, nil
}

// StartHostile starts a hostile registry for the test and closes it when the
// test ends.
func StartHostile(t testing.TB) *Hostile {
	t.Helper()
	h, err := NewHostile()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// Host returns "127.0.0.1:PORT", for use in image references.
func (h *Hostile) Host() string { return h.ln.Addr().String() }

// Reference returns "HOST/repo:tag".
func (h *Hostile) Reference(repo, tag string) string { return h.Host() + "/" + repo + ":" + tag }

// Close ends stalls, closes every connection and waits (bounded) for the
// handlers to return. It is safe to call more than once.
func (h *Hostile) Close() error {
	var err error
	h.closeOnce.Do(func() {
		close(h.closing)
		err = h.srv.Close()
		done := make(chan struct{})
		go func() { h.handlers.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(closeWait):
			err = errors.Join(err, errors.New("hostile registry close: requests still running"))
		}
	})
	return err
}

// SetManifest makes GET and HEAD of /v2/<repo>/manifests/<ref> return a.
func (h *Hostile) SetManifest(repo, ref string, a Answer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	a.Body = bytes.Clone(a.Body)
	a.Header = a.Header.Clone()
	h.repo(repo).manifests[ref] = a
}

// SetBlob makes GET and HEAD of /v2/<repo>/blobs/<d> return data, with
// Range support. d is used as given, so it may be a digest no honest
// registry would accept.
func (h *Hostile) SetBlob(repo string, d digest.Digest, data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.repo(repo).blobs[d.String()] = data
}

// Requests returns how many requests for repo's manifests and blobs have
// arrived, so a test can assert that a client did not walk a graph
// node by node.
func (h *Hostile) Requests(repo string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.repo(repo).requests
}

// repo returns the named repository, creating it; h.mu must be held.
func (h *Hostile) repo(name string) *hostileRepo {
	r := h.repos[name]
	if r == nil {
		r = &hostileRepo{manifests: map[string]Answer{}, blobs: map[string][]byte{}}
		h.repos[name] = r
	}
	return r
}

// ServeHTTP implements the registry's pull API.
func (h *Hostile) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.handlers.Add(1)
	defer h.handlers.Done()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		registryError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "this registry only serves pulls")
		return
	}
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	path := r.URL.Path
	if path == "/v2/" || path == "/v2" {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "{}")
		return
	}
	// The first /manifests/ or /blobs/ ends the repository name: the rest
	// is the reference as sent, which for a lying digest may hold slashes.
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		registryError(w, http.StatusNotFound, "NAME_UNKNOWN", "not a registry path")
		return
	}
	if repo, ref, ok := strings.Cut(rest, "/manifests/"); ok {
		h.serveManifest(w, r, repo, ref)
		return
	}
	if repo, ref, ok := strings.Cut(rest, "/blobs/"); ok {
		h.serveBlob(w, r, repo, ref)
		return
	}
	registryError(w, http.StatusNotFound, "NAME_UNKNOWN", "not a registry path")
}

func (h *Hostile) lookup(repo string, find func(*hostileRepo)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	rp := h.repo(repo)
	rp.requests++
	find(rp)
}

func (h *Hostile) serveManifest(w http.ResponseWriter, r *http.Request, repo, ref string) {
	var a Answer
	var ok bool
	h.lookup(repo, func(rp *hostileRepo) { a, ok = rp.manifests[ref] })
	if !ok {
		registryError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown")
		return
	}
	w.Header().Set("Content-Type", a.ContentType)
	w.Header().Set("Docker-Content-Digest", digest.FromBytes(a.Body).String())
	for k, v := range a.Header {
		w.Header()[k] = v
	}
	if w.Header().Get("Docker-Content-Digest") == "" {
		w.Header().Del("Docker-Content-Digest")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(a.Body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if a.StallAfter <= 0 || a.StallAfter >= len(a.Body) {
		w.Write(a.Body)
		return
	}
	w.Write(a.Body[:a.StallAfter])
	http.NewResponseController(w).Flush()
	select {
	case <-r.Context().Done():
	case <-h.closing:
	}
	// Returning now would let net/http end the response cleanly short;
	// abort the connection instead, as a dead peer would.
	panic(http.ErrAbortHandler)
}

func (h *Hostile) serveBlob(w http.ResponseWriter, r *http.Request, repo, ref string) {
	var data []byte
	var ok bool
	h.lookup(repo, func(rp *hostileRepo) { data, ok = rp.blobs[ref] })
	if !ok {
		registryError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown to registry")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Docker-Content-Digest", ref)
	// ServeContent answers Range with 206 and Content-Range, suffix and
	// multi-range requests included, and 416 outside the blob.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

// registryError writes a distribution-style JSON error.
func registryError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`+"\n", code, msg)
}
