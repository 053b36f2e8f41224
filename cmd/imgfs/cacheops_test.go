package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/imgfs/imgfs/cache/gc"
	"github.com/imgfs/imgfs/internal/testfuse"
	"github.com/imgfs/imgfs/internal/testregistry"
)

// diskWalk adds up st_blocks × 512 of the files under dir, by the
// top-level directory they are in, independently of gc.Usage.
func diskWalk(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(path, &st); err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		top, _, _ := strings.Cut(rel, string(filepath.Separator))
		out[top] += st.Blocks * 512
		out["total"] += st.Blocks * 512
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func cacheInventory(t *testing.T, cacheDir string) gc.Inventory {
	t.Helper()
	var inv gc.Inventory
	r := mustImgfs(t, "cache", "ls", "--json", "--cache-dir", cacheDir)
	if err := json.Unmarshal([]byte(r.stdout), &inv); err != nil {
		t.Fatalf("cache ls --json: %v\n%s", err, r.stdout)
	}
	return inv
}

// catHash reads path to its end and returns the sha256 digest of the bytes.
func catHash(t *testing.T, path string) digest.Digest {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return digest.NewDigest(digest.SHA256, h)
}

func blobFile(mnt string, d digest.Digest) string {
	return filepath.Join(mnt, "blobs", d.Algorithm().String(), d.Encoded())
}

func TestCacheLsAndDuMatchTheDisk(t *testing.T) {
	fx := registryFixtures(t)
	img := fx.three[false]
	ref := fx.reg.Reference(img.Repo, img.Tag)
	cacheDir := t.TempDir()
	mustImgfs(t, "fetch", "-q", "--plain-http", "--cache-dir", cacheDir, fx.reg.Reference("multi", "v1"))
	// A mount that reads 4 KiB of the large layer leaves it partial.
	mnt := mount(t, cacheDir, ref, "--plain-http")
	large := img.Layers[2]
	run(t, "dd", "if="+blobFile(mnt, large.Digest), "of=/dev/null", "bs=4096", "count=1")
	imgfs(t, nil, "unmount", mnt)

	inv := cacheInventory(t, cacheDir)
	var partial *gc.BlobInfo
	onDisk := map[digest.Digest]int64{}
	for i, b := range inv.Blobs {
		if b.State == "partial" && b.Digest == large.Digest {
			partial = &inv.Blobs[i]
			continue
		}
		fi, err := os.Stat(filepath.Join(cacheDir, "blobs", "sha256", b.Digest.Encoded()))
		if err != nil || fi.Size() != b.Size {
			t.Errorf("ls lists %s complete with %d bytes; on disk: %v", b.Digest, b.Size, err)
		}
		onDisk[b.Digest] = b.Size
	}
	entries, _ := os.ReadDir(filepath.Join(cacheDir, "blobs", "sha256"))
	if len(entries) != len(onDisk) {
		t.Errorf("ls lists %d complete blobs, blobs/sha256 holds %d", len(onDisk), len(entries))
	}
	if partial == nil || partial.Present <= 0 || partial.Present >= large.Size || partial.Size != large.Size {
		t.Fatalf("the large layer should be listed partial with some bytes present: %+v", partial)
	}
	if len(partial.Refs) != 1 || partial.Refs[0] != ref {
		t.Errorf("the partial layer's references are %v, want [%s]", partial.Refs, ref)
	}
	var names []string
	for _, r := range inv.Refs {
		names = append(names, r.Name)
	}
	if len(inv.Refs) != 2 {
		t.Errorf("ls lists references %v, want the fetched and the mounted one", names)
	}

	var du gc.Usage
	r := mustImgfs(t, "cache", "du", "--json", "--cache-dir", cacheDir)
	if err := json.Unmarshal([]byte(r.stdout), &du); err != nil {
		t.Fatalf("cache du --json: %v\n%s", err, r.stdout)
	}
	walk := diskWalk(t, cacheDir)
	want := gc.Usage{Complete: walk["blobs"], Partial: walk["ingest"], Indexes: walk["indexes"], Files: walk["files"], Logs: walk["logs"], Total: walk["total"]}
	want.Other = want.Total - want.Complete - want.Partial - want.Indexes - want.Files - want.Logs
	if du != want {
		t.Errorf("cache du = %+v, a walk of the directory = %+v", du, want)
	}
	if du.Logs == 0 || du.Partial == 0 {
		t.Errorf("the background mount's log and the partial layer should count: %+v", du)
	}
}

func TestPruneNeverRemovesALiveMountsBlobsAndKillNineReleasesThem(t *testing.T) {
	fx := registryFixtures(t)
	img := fx.three[false]
	ref := fx.reg.Reference(img.Repo, img.Tag)
	cacheDir := t.TempDir()
	testfuse.Require(t)
	mnt := t.TempDir()
	out := mustImgfs(t, "mount", "--background", "--plain-http", "--cache-dir", cacheDir, ref, mnt).stdout
	pid := backgroundPID(t, out)
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL); unmountQuietly(mnt) })
	medium := img.Layers[1]
	if got := catHash(t, blobFile(mnt, medium.Digest)); got != medium.Digest {
		t.Fatalf("read through the mount hashes to %s, want %s", got, medium.Digest)
	}
	committed := filepath.Join(cacheDir, "blobs", "sha256", medium.Digest.Encoded())
	waitFor(t, "the medium layer to be committed", func() bool { _, err := os.Stat(committed); return err == nil })

	r := mustImgfs(t, "cache", "prune", "--all", "--cache-dir", cacheDir)
	if _, err := os.Stat(committed); err != nil {
		t.Fatalf("prune --all removed a blob a live mount (pid %d) pins: %v\n%s", pid, err, r.stdout)
	}
	if !strings.Contains(r.stdout, "pinned by live mounts") {
		t.Errorf("prune should say what it kept:\n%s", r.stdout)
	}
	if inv := cacheInventory(t, cacheDir); len(inv.Refs) != 1 {
		t.Errorf("prune --all dropped the live mount's reference: %+v", inv.Refs)
	}

	// kill -9: no cleanup runs, the pin file stays, but its lock is gone.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the killed mount to exit", func() bool { return syscall.Kill(pid, 0) == syscall.ESRCH })
	unix.Unmount(mnt, unix.MNT_DETACH)
	pins, _ := filepath.Glob(filepath.Join(cacheDir, "pins", "*.json"))
	if len(pins) != 1 {
		t.Fatalf("want the dead mount's pin left behind, found %v", pins)
	}
	r = mustImgfs(t, "cache", "prune", "--all", "--cache-dir", cacheDir)
	if _, err := os.Stat(committed); !os.IsNotExist(err) {
		t.Errorf("after kill -9, the dead mount's pin still protects its blob: %v\n%s", err, r.stdout)
	}
	if !strings.Contains(r.stdout, "1 stale pin") || !strings.Contains(r.stdout, "removed complete "+string(medium.Digest)) {
		t.Errorf("prune should report the stale pin and the blob it freed:\n%s", r.stdout)
	}
	if pins, _ := filepath.Glob(filepath.Join(cacheDir, "pins", "*")); len(pins) != 0 {
		t.Errorf("stale pins left: %v", pins)
	}
	if inv := cacheInventory(t, cacheDir); len(inv.Refs) != 0 || len(inv.Blobs) != 0 {
		t.Errorf("prune --all left %+v", inv)
	}
}

var (
	cappedOnce   sync.Once
	cappedPushed testregistry.Pushed
	cappedErr    error
)

// cappedImage is four 3 MiB uncompressed layers, 12 MiB in all.
func cappedImage(t *testing.T, fx *fixtures) testregistry.Pushed {
	t.Helper()
	cappedOnce.Do(func() {
		var layers []testregistry.Layer
		for i := range 4 {
			layers = append(layers, testregistry.TarLayer(testregistry.Uncompressed, testregistry.RandomFile(fmt.Sprintf("data/%d.bin", i), int64(40+i), 3<<20)))
		}
		cappedPushed, cappedErr = fx.reg.PushImage("capped", "v1", testregistry.Image{Layers: layers})
	})
	if cappedErr != nil {
		t.Fatal(cappedErr)
	}
	return cappedPushed
}

func TestCacheMaxSizeHoldsDuringALongRead(t *testing.T) {
	fx := registryFixtures(t)
	img := cappedImage(t, fx)
	const capBytes = 8 << 20 // room for two layers of four
	cacheDir := t.TempDir()
	mnt := mount(t, cacheDir, fx.reg.Reference(img.Repo, img.Tag), "--plain-http", "--cache-max-size", "8MiB")

	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			w := diskWalkQuiet(cacheDir)
			if n := w["blobs"] + w["ingest"] + w["indexes"]; n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	// Every layer, then the first again, which the cap has evicted by then.
	order := append(append([]int{}, 0, 1, 2, 3), 0)
	for _, i := range order {
		layer := img.Layers[i]
		if got := catHash(t, blobFile(mnt, layer.Digest)); got != layer.Digest {
			t.Fatalf("layer %d read through the mount hashes to %s, want %s", i, got, layer.Digest)
		}
		// The kernel releases a file after close returns; the next layer is
		// opened once this one is closed in the cache too.
		waitFor(t, "the layer to be closed", func() bool { return mountStatsOf(t, mnt).Cache.OpenBlobs == 0 })
	}
	close(stop)
	<-sampled
	if p := peak.Load(); p > capBytes || p < 3<<20 {
		t.Errorf("the cache peaked at %d bytes under --cache-max-size %d (and must have held one layer)", p, capBytes)
	}
	st := mountStatsOf(t, mnt)
	if st.Cache.Evictions < 3 {
		t.Errorf("reading 15 MiB under an 8 MiB cap evicted %d blobs, want at least 3", st.Cache.Evictions)
	}
	if st.Cache.CacheMaxSize != capBytes {
		t.Errorf("stats.json says the cap is %d", st.Cache.CacheMaxSize)
	}
	r := mustImgfs(t, "stats", mnt)
	if !strings.Contains(r.stdout, shortDigest(img.Layers[0].Digest)) || !strings.Contains(r.stdout, "cap 8.0 MiB") {
		t.Errorf("imgfs stats output lacks the blob table or the cap:\n%s", r.stdout)
	}
}

func diskWalkQuiet(dir string) map[string]int64 {
	out := map[string]int64{}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		var st syscall.Stat_t
		if syscall.Lstat(path, &st) == nil {
			rel, _ := filepath.Rel(dir, path)
			top, _, _ := strings.Cut(rel, string(filepath.Separator))
			out[top] += st.Blocks * 512
		}
		return nil
	})
	return out
}

func mountStatsOf(t *testing.T, mnt string) mountStats {
	t.Helper()
	st, err := readMountStats(filepath.Join(mnt, ".imgfs", "stats.json"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}
