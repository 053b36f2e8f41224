package testregistry

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const proxyBlobSize = 1 << 20

// proxyFixture starts a registry with one random 1 MiB blob and a proxy in
// front of it.
func proxyFixture(t *testing.T) (*Registry, *Proxy, ocispec.Descriptor, []byte) {
	t.Helper()
	r := Start(t)
	want, _ := io.ReadAll(RandomBytes(42, proxyBlobSize))
	desc, err := r.PushBlob("proxied", RandomBytes(42, proxyBlobSize), proxyBlobSize)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != digest.FromBytes(want) || desc.Size != proxyBlobSize {
		t.Fatalf("PushBlob returned %v", desc)
	}
	return r, StartProxy(t, r.Host()), desc, want
}

func TestProxyCountsRange(t *testing.T) {
	_, p, desc, want := proxyFixture(t)
	url := blobURL(p.Host(), "proxied", desc.Digest)
	resp, body := get(t, context.Background(), url, http.Header{"Range": {"bytes=1000-2023"}})
	if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Range") != "bytes 1000-2023/1048576" {
		t.Fatalf("range GET: %s, Content-Range %q", resp.Status, resp.Header.Get("Content-Range"))
	}
	if !bytes.Equal(body, want[1000:2024]) {
		t.Fatal("range GET returned the wrong bytes")
	}
	if p.BlobBytes() != 1024 || p.BlobRequests() != 1 {
		t.Fatalf("counters: %d bytes in %d requests, want 1024 in 1", p.BlobBytes(), p.BlobRequests())
	}
	// Manifests and HEADs are logged but are not blob GETs.
	head, _ := http.Head(url)
	head.Body.Close()
	get(t, context.Background(), "http://"+p.Host()+"/v2/", nil)
	reqs := p.Requests()
	if len(reqs) != 3 || reqs[0].Range != "bytes=1000-2023" || reqs[0].Status != 206 || reqs[0].Bytes != 1024 ||
		reqs[1].Method != http.MethodHead || p.BlobRequests() != 1 {
		t.Fatalf("log %+v", reqs)
	}
	p.ResetCounters()
	if p.BlobBytes() != 0 || p.BlobRequests() != 0 || len(p.Requests()) != 0 {
		t.Fatal("ResetCounters left counts")
	}
}

func TestProxyCorrupt(t *testing.T) {
	_, p, desc, want := proxyFixture(t)
	url := blobURL(p.Host(), "proxied", desc.Digest)
	p.SetFault(Corrupt.On(desc.Digest.Encoded()).Times(1))
	_, body := get(t, context.Background(), url, nil)
	if len(body) != len(want) {
		t.Fatalf("corrupt body has %d bytes, want %d", len(body), len(want))
	}
	var diff []int
	for i := range body {
		if body[i] != want[i] {
			diff = append(diff, i)
		}
	}
	if len(diff) != 1 || diff[0] != len(want)/2 {
		t.Fatalf("corrupted offsets %v, want [%d]", diff, len(want)/2)
	}
	if p.BlobBytes() != int64(len(want)) {
		t.Errorf("BlobBytes %d", p.BlobBytes())
	}
	// Times(1): the retry gets the real bytes.
	if _, body := get(t, context.Background(), url, nil); !bytes.Equal(body, want) {
		t.Fatal("second GET still corrupt")
	}
}

func TestProxyStallEndsWithClient(t *testing.T) {
	_, p, desc, want := proxyFixture(t)
	p.SetFault(Stall.After(4096))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, blobURL(p.Host(), "proxied", desc.Digest), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	prefix := make([]byte, 4096)
	if _, err := io.ReadFull(resp.Body, prefix); err != nil || !bytes.Equal(prefix, want[:4096]) {
		t.Fatalf("prefix before the stall: %v", err)
	}
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil || n != 0 {
		t.Fatalf("stalled read returned %d bytes, err %v", n, err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 5*time.Second {
		t.Fatalf("stall ended after %v, want about 200ms (when the client cancelled)", d)
	}
	// The proxy's side of the request ends too, and is logged.
	deadline := time.Now().Add(5 * time.Second)
	for len(p.Requests()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if reqs := p.Requests(); len(reqs) != 1 || reqs[0].Bytes != 4096 {
		t.Fatalf("log after stall: %+v", reqs)
	}
}

func TestProxyCloseEndsStall(t *testing.T) {
	_, p, desc, _ := proxyFixture(t)
	p.SetFault(Stall)
	resp, err := http.Get(blobURL(p.Host(), "proxied", desc.Digest))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	readErr := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, resp.Body)
		readErr <- err
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v during a stall", d)
	}
	select {
	case err := <-readErr:
		if err == nil {
			t.Fatal("stalled body ended cleanly after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("client still blocked after Close")
	}
}

func TestProxyReset(t *testing.T) {
	_, p, desc, want := proxyFixture(t)
	p.SetFault(Reset.On("/blobs/"))
	resp, err := http.Get(blobURL(p.Host(), "proxied", desc.Digest))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) || !bytes.Equal(body, want[:len(want)/2]) {
		t.Fatalf("reset body: %d bytes, err %v; want %d bytes then unexpected EOF", len(body), err, len(want)/2)
	}
}

func TestProxyStatusAndDown(t *testing.T) {
	_, p, desc, _ := proxyFixture(t)
	url := blobURL(p.Host(), "proxied", desc.Digest)
	p.SetFault(Status(http.StatusServiceUnavailable).On("/blobs/"))
	if resp, _ := get(t, context.Background(), url, nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("Status(503): got %s", resp.Status)
	}
	if resp, _ := get(t, context.Background(), "http://"+p.Host()+"/v2/", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("Status scoped to /blobs/ hit /v2/: %s", resp.Status)
	}
	if p.BlobRequests() != 1 || p.BlobBytes() != 0 {
		t.Errorf("a 503 counted %d bytes in %d requests", p.BlobBytes(), p.BlobRequests())
	}

	p.SetFault(Down)
	client := &http.Client{Transport: &http.Transport{}}
	if resp, err := client.Get(url); err == nil {
		resp.Body.Close()
		t.Fatalf("Down: got %s", resp.Status)
	}
	p.SetFault(None)
	if resp, _ := get(t, context.Background(), url, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("after None: %s", resp.Status)
	}
}

func TestProxyOverride(t *testing.T) {
	r, p, _, _ := proxyFixture(t)
	body := []byte(`{"schemaVersion":1,"name":"odd","tag":"v1"}`)
	h := http.Header{
		"Content-Type":          {"application/vnd.docker.distribution.manifest.v1+prettyjws"},
		"Docker-Content-Digest": {digest.FromBytes(body).String()},
	}
	p.Override(http.MethodGet, "/odd/manifests/v1", http.StatusOK, h, body)
	p.Override("", "/secret/manifests/v1", http.StatusUnauthorized,
		http.Header{"Www-Authenticate": {`Bearer realm="http://127.0.0.1:1/token",service="test"`}}, nil)

	resp, got := get(t, context.Background(), "http://"+p.Host()+"/v2/odd/manifests/v1", nil)
	if resp.StatusCode != 200 || !bytes.Equal(got, body) || resp.Header.Get("Docker-Content-Digest") != h.Get("Docker-Content-Digest") {
		t.Fatalf("override: %s %q %v", resp.Status, got, resp.Header)
	}
	resp, _ = get(t, context.Background(), "http://"+p.Host()+"/v2/secret/manifests/v1", nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
		t.Fatalf("401 override: %s %v", resp.Status, resp.Header)
	}
	// Other paths still reach the registry.
	if _, err := r.PushImage("real", "v1", Image{}); err != nil {
		t.Fatal(err)
	}
	resp, _ = get(t, context.Background(), "http://"+p.Host()+"/v2/real/manifests/v1", http.Header{"Accept": {ManifestAccept}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("non-overridden manifest: %s", resp.Status)
	}
	p.ClearOverrides()
	if resp, _ := get(t, context.Background(), "http://"+p.Host()+"/v2/odd/manifests/v1", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("after ClearOverrides: %s", resp.Status)
	}
}
