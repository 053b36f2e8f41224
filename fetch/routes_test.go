package fetch

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/fetch/hosts"
	"github.com/imgfs/imgfs/internal/blobio"
)

// fakeHost is a registry host for routing tests: it serves one blob and
// one manifest as told and counts what it was asked.
type fakeHost struct {
	srv *httptest.Server

	mu       sync.Mutex
	requests []*http.Request
	blob     []byte
	manifest []byte
	status   int  // when not 0, the answer to everything
	whole    bool // answer ranges with 200 and the whole blob
}

func newFakeHost(t *testing.T, blob, manifest []byte) *fakeHost {
	h := &fakeHost{blob: blob, manifest: manifest}
	h.srv = httptest.NewServer(h)
	t.Cleanup(h.srv.Close)
	return h
}

func (h *fakeHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.requests = append(h.requests, r)
	status, whole := h.status, h.whole
	h.mu.Unlock()
	switch {
	case status != 0:
		w.WriteHeader(status)
	case strings.Contains(r.URL.Path, "/manifests/"):
		w.Header().Set("Content-Type", ocispec.MediaTypeImageManifest)
		w.Write(h.manifest)
	case r.Header.Get("Range") != "" && !whole:
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(h.blob))
	default:
		w.Header().Set("Content-Length", fmt.Sprint(len(h.blob)))
		w.Write(h.blob)
	}
}

func (h *fakeHost) hits() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.requests)
}

func (h *fakeHost) host(mirror bool, c hosts.Capability) hosts.Host {
	return hosts.Host{Scheme: "http", Host: strings.TrimPrefix(h.srv.URL, "http://"), Path: "/v2", Capabilities: c, Mirror: mirror,
		Header: http.Header{"X-Mirror-Test": {"yes"}}}
}

func routedRemote(t *testing.T, hs ...hosts.Host) *Remote {
	t.Helper()
	r, err := NewRemote(Reference{Registry: "origin.example", Repository: "r", Tag: "t"},
		RemoteOptions{Username: "u", Password: "p", Hosts: hs, TransportOptions: TransportOptions{IdleTimeout: testIdleTimeout}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func readRange(t *testing.T, r *Remote, desc ocispec.Descriptor, off, n int64) []byte {
	t.Helper()
	rc, err := r.FetchRange(callContext(t), desc, off, n)
	if err != nil {
		t.Fatalf("range %d+%d: %v", off, n, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wholeAnswer asks for a range that the host answers with the whole blob,
// and returns that blob.
func wholeAnswer(t *testing.T, r *Remote, desc ocispec.Descriptor, off, n int64) []byte {
	t.Helper()
	_, err := r.FetchRange(callContext(t), desc, off, n)
	var whole *blobio.WholeBlob
	if !errors.As(err, &whole) {
		t.Fatalf("range %d+%d = %v, want a whole-blob answer", off, n, err)
	}
	defer whole.Body.Close()
	b, err := io.ReadAll(whole.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const all = hosts.Pull | hosts.Resolve

func TestResolveFallsBackAndHonoursCapabilities(t *testing.T) {
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`)
	pullOnly := newFakeHost(t, nil, manifest)
	missing := newFakeHost(t, nil, manifest)
	missing.status = http.StatusNotFound
	broken := newFakeHost(t, nil, manifest)
	broken.status = http.StatusBadGateway
	down := newFakeHost(t, nil, manifest)
	down.srv.Close()
	server := newFakeHost(t, nil, manifest)

	r := routedRemote(t, pullOnly.host(true, hosts.Pull), missing.host(true, all), broken.host(true, all), down.host(true, all), server.host(false, all))
	if _, _, err := r.Resolve(callContext(t)); err != nil {
		t.Fatal(err)
	}
	if pullOnly.hits() != 0 {
		t.Error("a pull-only mirror was asked to resolve a tag")
	}
	if missing.hits() != 1 || broken.hits() != 1 || server.hits() != 1 {
		t.Errorf("hits: 404 mirror %d, 502 mirror %d (no retries), server %d; want 1 each", missing.hits(), broken.hits(), server.hits())
	}
	q := missing.requests[0]
	if q.URL.Query().Get("ns") != "origin.example" || q.Header.Get("X-Mirror-Test") != "yes" || q.Header.Get("Authorization") != "" {
		t.Errorf("mirror request: ns=%q header=%q auth=%q", q.URL.Query().Get("ns"), q.Header.Get("X-Mirror-Test"), q.Header.Get("Authorization"))
	}

	// By digest, a pull-only mirror serves it.
	r = routedRemote(t, pullOnly.host(true, hosts.Pull), server.host(false, all))
	r.ref.Tag, r.ref.Digest = "", digest.FromBytes(manifest)
	if _, _, err := r.Resolve(callContext(t)); err != nil || pullOnly.hits() != 1 {
		t.Errorf("resolve by digest: %v; pull-only mirror hits %d, want 1", err, pullOnly.hits())
	}

	// The last host's answer stands.
	r = routedRemote(t, missing.host(true, all), missing.host(false, all))
	if _, _, err := r.Resolve(callContext(t)); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("everything 404: %v", err)
	}
}

func TestRangesStickToTheHostThatServedAndFallBack(t *testing.T) {
	blob := bytes.Repeat([]byte("0123456789abcdef"), (6<<20)/16) // 6 MiB: several chunks
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	m1 := newFakeHost(t, blob, nil)
	m2 := newFakeHost(t, blob, nil)
	server := newFakeHost(t, blob, nil)
	r := routedRemote(t, m1.host(true, hosts.Pull), m2.host(true, hosts.Pull), server.host(false, all))

	m1.status = http.StatusNotFound
	if got := readRange(t, r, desc, 100, 10); !bytes.Equal(got, blob[100:110]) {
		t.Fatalf("got %q", got)
	}
	m1.status = 0
	readRange(t, r, desc, 200, 10)
	if m1.hits() != 1 || m2.hits() != 2 {
		t.Errorf("after m2 served the first bytes: m1 %d hits, m2 %d; want 1 and 2", m1.hits(), m2.hits())
	}

	// A whole-blob answer, however far in the range, goes to the cache
	// whole (which lands every chunk it lacks from it), and the mirror is
	// passed over for this blob's other ranges for a while.
	m2.whole = true
	if got := wholeAnswer(t, r, desc, 5<<20, 50); !bytes.Equal(got, blob) {
		t.Fatal("the whole answer is not the blob")
	}
	before := m2.hits()
	if got := readRange(t, r, desc, 5<<20+100, 50); !bytes.Equal(got, blob[5<<20+100:5<<20+150]) {
		t.Fatalf("range after a whole answer: got %q", got)
	}
	if m2.hits() != before {
		t.Error("the mirror that answered whole was asked again at once")
	}

	// A server without ranges is used the same way, not refused.
	server.whole, m1.whole = true, true
	r = routedRemote(t, server.host(false, all))
	if got := wholeAnswer(t, r, desc, 5<<20, 10); !bytes.Equal(got, blob) {
		t.Fatal("the server's whole answer is not the blob")
	}

	// A mirror that is down is passed over, then put last.
	down := newFakeHost(t, blob, nil)
	down.srv.Close()
	server.whole = false
	r = routedRemote(t, down.host(true, hosts.Pull), server.host(false, all))
	readRange(t, r, desc, 0, 10)
	readRange(t, r, desc, 10, 10)
	if got := readRange(t, r, desc, 20, 10); !bytes.Equal(got, blob[20:30]) {
		t.Errorf("got %q", got)
	}
}
