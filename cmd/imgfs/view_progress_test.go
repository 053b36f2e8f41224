package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/imgfs/imgfs/internal/imagemount"
	"github.com/imgfs/imgfs/internal/testregistry"
)

// progressLinkRate makes the index pass of the 16 MiB layer take about 4 s.
const progressLinkRate = 4_000_000

// TestViewIndexPassShowsProgressAndBlocksNoOtherLayer: while one layer's
// index pass runs over a slow link, .imgfs/stats.json shows it indexing
// with its progress, and listing another layer's tree is served at once
// rather than queued behind the pass. Only the order of events is checked:
// the other layer's tree is listed while the first is still indexing.
func TestViewIndexPassShowsProgressAndBlocksNoOtherLayer(t *testing.T) {
	fx := registryFixtures(t)
	var layers []testregistry.PreparedLayer
	for _, raw := range [][]byte{
		mkTar(t, tarEntry{name: "big.bin", mode: 0o644, data: randomData(5, 16<<20)}),
		mkTar(t, fileEntry("etc/hello", "hi\n")),
	} {
		l, err := testregistry.LayerBlob(raw, testregistry.BlobGzip)
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	img, err := fx.reg.PushPrepared("view/progress", "v1", layers)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testregistry.StartProxy(t, fx.reg.Host())
	proxy.SetBandwidth(progressLinkRate)
	mnt := mount(t, t.TempDir(), proxy.Host()+"/view/progress:v1")
	big, small := img.Layers[0], img.Layers[1]
	layerDir := func(i int) string {
		return filepath.Join(mnt, "layers", []string{"0-", "1-"}[i]+img.Layers[i].Digest.Encoded()[:12])
	}

	bigListed := make(chan error, 1)
	go func() { _, err := os.ReadDir(layerDir(0)); bigListed <- err }()
	statOf := func(want string) imagemount.LayerStats {
		for _, s := range viewStatsOf(t, mnt) {
			if s.Layer.String() == want {
				return s
			}
		}
		return imagemount.LayerStats{}
	}
	waitFor(t, "the big layer's index pass to make progress", func() bool {
		s := statOf(big.Digest.String())
		return s.State == "indexing" && s.IndexedRead > 0
	})
	if s := statOf(big.Digest.String()); s.IndexedRead >= s.Size {
		t.Fatalf("index pass progress %d of %d bytes while indexing, want a part", s.IndexedRead, s.Size)
	}

	entries, err := os.ReadDir(layerDir(1))
	if err != nil || len(entries) != 1 || entries[0].Name() != "etc" {
		t.Fatalf("ls of the small layer's tree during the big layer's pass: %v, %v", entries, err)
	}
	if s := statOf(big.Digest.String()); s.State != "indexing" {
		t.Errorf("the big layer was %q by the time the small layer's tree was listed, want still indexing: the test proves nothing", s.State)
	}
	if s := statOf(small.Digest.String()); s.State != "ready" {
		t.Errorf("small layer after its ls: %+v, want ready", s)
	}

	proxy.SetBandwidth(0)
	if err := <-bigListed; err != nil {
		t.Fatalf("ls of the big layer's tree: %v", err)
	}
	if s := statOf(big.Digest.String()); s.State != "ready" || s.IndexedRead != s.Size {
		t.Errorf("big layer after its ls: %+v, want ready after a pass over all of it", s)
	}
}
