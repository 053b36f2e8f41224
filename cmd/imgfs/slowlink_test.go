package main

import (
	"strings"
	"sync"
	"testing"

	"github.com/imgfs/imgfs/internal/testregistry"
)

// slowLinkRate is the link TestFetchOverSlowLink fetches over: 20 MB/s,
// an ordinary connection to a remote registry.
const slowLinkRate = 20_000_000

// slowLinkLayerSize makes the fetch take about 13 s over slowLinkRate:
// more than twice --fetch-timeout, so a fetch that counts time spent
// waiting for a connection as a stall fails.
const slowLinkLayerSize = 256 << 20

var (
	slowLinkOnce   sync.Once
	slowLinkPushed testregistry.Pushed
	slowLinkErr    error
)

// TestFetchOverSlowLink fetches an image with a 256 MiB layer through a
// proxy limited to 20 MB/s with --fetch-timeout 5s: the layer takes far
// longer than 5 s, but bytes keep arriving, so nothing stalls and the fetch
// must succeed, with every blob verified.
func TestFetchOverSlowLink(t *testing.T) {
	if testing.Short() {
		t.Skip("fetches 256 MiB at 20 MB/s (about 13 s); skipped with -short")
	}
	fx := registryFixtures(t)
	slowLinkOnce.Do(func() {
		slowLinkPushed, slowLinkErr = fx.reg.PushImage("slowlink", "v1", testregistry.Image{Layers: []testregistry.Layer{
			testregistry.TarLayer(testregistry.Uncompressed, testregistry.RandomFile("slow.bin", 256, slowLinkLayerSize)),
		}})
	})
	if slowLinkErr != nil {
		t.Fatal(slowLinkErr)
	}
	proxy := testregistry.StartProxy(t, fx.reg.Host())
	proxy.SetBandwidth(slowLinkRate)
	cacheDir := t.TempDir()
	r := imgfs(t, nil, "fetch", "--cache-dir", cacheDir, "--fetch-timeout", "5s", proxy.Host()+"/slowlink:v1")
	if r.code != 0 {
		t.Fatalf("fetch over a 20 MB/s link with --fetch-timeout 5s: exit %d after %d blob bytes\nstderr: %s",
			r.code, proxy.BlobBytes(), strings.TrimSpace(r.stderr))
	}
	checkNoPanic(t, "imgfs fetch over a slow link", r)
	blobs := checkCacheBlobs(t, cacheDir)
	layer := slowLinkPushed.Layers[0]
	if !blobs[layer.Digest.String()] || !blobs[slowLinkPushed.Config.Digest.String()] {
		t.Errorf("fetch exited 0 but the cache lacks the layer %s or the config", layer.Digest)
	}
	// The link is the bottleneck, so each byte should cross it once.
	if got := proxy.BlobBytes(); got > layer.Size+layer.Size/20+slowLinkPushed.Config.Size {
		t.Errorf("fetch pulled %d blob bytes for a %d-byte layer: retries repeated work", got, layer.Size)
	}
}
