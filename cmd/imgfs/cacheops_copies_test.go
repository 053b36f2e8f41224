package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgfs/imgfs/cache/gc"
	"github.com/imgfs/imgfs/internal/testregistry"
)

// TestCacheOpsCoverFileCopies: a file of rootfs/ read whole is copied into
// files/; cache du and ls count the copy; prune --all keeps it while the
// mount that pins its layer lives; a copy removed under an open passthrough
// handle still serves it, and the next open reads through the layer; once
// unmounted, prune --all removes the copy with its layer.
func TestCacheOpsCoverFileCopies(t *testing.T) {
	fx := registryFixtures(t)
	want := randomData(11, 3<<19) // 1.5 MiB, over the copy threshold
	layer, err := testregistry.LayerBlob(mkTar(t, dirEntry("data/", 0o755),
		tarEntry{name: "data/big.bin", mode: 0o644, data: want}), testregistry.BlobGzip)
	if err != nil {
		t.Fatal(err)
	}
	img, err := fx.reg.PushPrepared("cachecopies", "v1", []testregistry.PreparedLayer{layer})
	if err != nil {
		t.Fatal(err)
	}
	cacheDir := t.TempDir()
	mnt := mount(t, cacheDir, fx.reg.Host()+"/cachecopies:v1")
	big := filepath.Join(mnt, "rootfs/data/big.bin")
	copies := func() []string {
		paths, _ := filepath.Glob(filepath.Join(cacheDir, "files", "v*", "*"))
		return paths
	}
	// Reading the file whole makes its copy. A read may find the file's
	// pages in the kernel's cache and record nothing; the copy is then
	// given up, and the next open drops those pages.
	copyMade := func() bool {
		if got, err := os.ReadFile(big); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("cat big.bin: %d bytes, %v", len(got), err)
		}
		return len(copies()) == 1
	}
	waitFor(t, "the file copy", copyMade)

	// A passthrough handle outlives its copy's removal (as eviction under
	// a cap removes it), and a later open falls back to the layer.
	f, err := os.Open(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(copies()[0]); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	f.Close()
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("read through a handle whose copy was removed: %d bytes, %v", len(got), err)
	}
	head := make([]byte, 64<<10)
	waitFor(t, "an open that reads through the layer", func() bool {
		before := mountStatsOf(t, mnt).FUSE.PassthroughOpens
		g, err := os.Open(big)
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		if _, err := io.ReadFull(g, head); err != nil || !bytes.Equal(head, want[:len(head)]) {
			t.Fatalf("reopened big.bin reads %v", err)
		}
		return mountStatsOf(t, mnt).FUSE.PassthroughOpens == before
	})
	waitFor(t, "the file copy again", copyMade)
	if data, err := os.ReadFile(copies()[0]); err != nil || !bytes.Equal(data, want) {
		t.Fatalf("the file copy holds %d bytes, %v", len(data), err)
	}

	var du gc.Usage
	r := mustImgfs(t, "cache", "du", "--json", "--cache-dir", cacheDir)
	if err := json.Unmarshal([]byte(r.stdout), &du); err != nil {
		t.Fatalf("cache du --json: %v\n%s", err, r.stdout)
	}
	if walk := diskWalk(t, cacheDir); du.Files < int64(len(want)) || du.Files != walk["files"] || du.Total != walk["total"] {
		t.Errorf("cache du = %+v; a walk of the directory: files %d, total %d", du, walk["files"], walk["total"])
	}
	inv := cacheInventory(t, cacheDir)
	if len(inv.FileCopies) != 1 || inv.FileCopies[0].Layer != img.Layers[0].Digest || inv.FileCopies[0].Copies != 1 ||
		inv.FileCopies[0].DiskBytes != du.Files {
		t.Errorf("cache ls lists file copies %+v, want one of layer %s, %d bytes", inv.FileCopies, img.Layers[0].Digest, du.Files)
	}

	r = mustImgfs(t, "cache", "prune", "--all", "--cache-dir", cacheDir)
	if len(copies()) != 1 || !strings.Contains(r.stdout, "1 file copy pinned by live mounts") {
		t.Fatalf("prune --all with the mount live: copies %v\n%s", copies(), r.stdout)
	}

	imgfs(t, nil, "unmount", mnt)
	waitFor(t, "the mount's pin to go", func() bool {
		pins, _ := filepath.Glob(filepath.Join(cacheDir, "pins", "*.json"))
		return len(pins) == 0
	})
	r = mustImgfs(t, "cache", "prune", "--all", "--cache-dir", cacheDir)
	if left := copies(); len(left) != 0 || !strings.Contains(r.stdout, "removed 1 file copy of layer "+string(img.Layers[0].Digest)) {
		t.Errorf("prune --all after unmount left %v\n%s", left, r.stdout)
	}
	if inv := cacheInventory(t, cacheDir); len(inv.FileCopies) != 0 || len(inv.Blobs) != 0 {
		t.Errorf("cache ls after prune --all: %+v", inv)
	}
}
