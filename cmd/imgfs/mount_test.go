package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/testfuse"
	"github.com/imgfs/imgfs/internal/testregistry"
)

// requireFUSE fails under CI when /dev/fuse is missing: the end-to-end
// tests are the point, never silently skipped there.
// mount mounts ref in the background and unmounts it when the test ends.
func mount(t *testing.T, cacheDir, ref string, args ...string) string {
	t.Helper()
	testfuse.Require(t)
	mnt := t.TempDir()
	all := append([]string{"mount", "--background", "--cache-dir", cacheDir}, args...)
	pid := backgroundPID(t, mustImgfs(t, append(all, ref, mnt)...).stdout)
	t.Cleanup(func() {
		imgfs(t, nil, "unmount", mnt)
		// The server may still be storing an index or a log line in the
		// cache: the temporary directories go only once it has exited.
		waitFor(t, fmt.Sprintf("the mount server (pid %d) to exit", pid), func() bool { return !processRunning(pid) })
	})
	return mnt
}

// processRunning reports whether process pid exists and is not a zombie:
// the background server is not the test's child, so whoever reaps it may
// be slow.
func processRunning(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] != 'Z'
}

// readIndex parses the mount's index.json.
func readIndex(t *testing.T, mnt string) ocispec.Index {
	t.Helper()
	var index ocispec.Index
	data, err := os.ReadFile(filepath.Join(mnt, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &index); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	return index
}

func refNames(index ocispec.Index) map[string]ocispec.Descriptor {
	out := map[string]ocispec.Descriptor{}
	for _, m := range index.Manifests {
		out[m.Annotations[ocispec.AnnotationRefName]] = m
	}
	return out
}

func TestMountServesLayoutThatToolsRead(t *testing.T) {
	fx := registryFixtures(t)
	mixed := testregistry.Image{Layers: []testregistry.Layer{
		testregistry.TarLayer(testregistry.Gzip, testregistry.BytesFile("etc/gzip.txt", []byte("gzip layer\n"))),
		testregistry.TarLayer(testregistry.Uncompressed, testregistry.RandomFile("data/plain.bin", 11, 300_000)),
		testregistry.TarLayer(testregistry.Zstd, testregistry.BytesFile("etc/zstd.txt", []byte("zstd layer\n"))),
	}}
	pushed, err := fx.reg.PushImage("mixed", "v1", mixed)
	if err != nil {
		t.Fatal(err)
	}
	cacheDir := t.TempDir()
	mnt := mount(t, cacheDir, fx.reg.Reference("mixed", "v1"))

	listing := run(t, "ls", "-R", mnt)
	for _, want := range []string{"oci-layout", "index.json", "manifest.json", "config.json", "layers", pushed.Layers[2].Digest.Encoded()} {
		if !strings.Contains(listing, want) {
			t.Errorf("ls -R lacks %s:\n%s", want, listing)
		}
	}
	run(t, "jq", ".", filepath.Join(mnt, "index.json"))
	run(t, "jq", ".", filepath.Join(mnt, "manifest.json"))
	run(t, "jq", ".", filepath.Join(mnt, "config.json"))
	for _, d := range append([]ocispec.Descriptor{pushed.Manifest, pushed.Config}, pushed.Layers...) {
		size := strings.TrimSpace(run(t, "stat", "-c", "%s", filepath.Join(mnt, "blobs", "sha256", d.Digest.Encoded())))
		if size != strconv.FormatInt(d.Size, 10) {
			t.Errorf("stat size of %s = %s, want %d", d.Digest, size, d.Size)
		}
	}
	layerFile := filepath.Join(mnt, "blobs", "sha256", pushed.Layers[0].Digest.Encoded())
	if got := strings.TrimSpace(run(t, "stat", "-c", "%a %U", layerFile)) + " " + strings.TrimSpace(run(t, "stat", "-c", "%a %U", mnt+"/blobs")); got != "444 root 555 root" {
		t.Errorf("stat mode/owner = %q, want files 0444 and dirs 0555 owned by the mounting user", got)
	}
	created := testregistry.DefaultCreated.Unix()
	if got := strings.TrimSpace(run(t, "stat", "-c", "%Y", layerFile)); got != strconv.FormatInt(created, 10) {
		t.Errorf("mtime = %s, want the image's created time %d", got, created)
	}
	if ino1, ino2 := run(t, "stat", "-c", "%i", layerFile), run(t, "stat", "-c", "%i", layerFile); ino1 != ino2 {
		t.Errorf("inode numbers not stable: %s vs %s", ino1, ino2)
	}
	if out, err := exec.Command("touch", filepath.Join(mnt, "new")).CombinedOutput(); err == nil || !strings.Contains(string(out), "Read-only file system") {
		t.Errorf("touch in the mount: %v %s, want EROFS", err, out)
	}
	if names := refNames(readIndex(t, mnt)); names["v1"].Digest != pushed.Manifest.Digest {
		t.Errorf("index.json names %v, want v1 → %s", names, pushed.Manifest.Digest)
	}

	// sha256sum reads every blob through FUSE, fetching lazily.
	sums := run(t, "sh", "-c", "cd "+mnt+"/blobs/sha256 && sha256sum *")
	for _, line := range strings.Split(strings.TrimSpace(sums), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 || f[0] != f[1] {
			t.Errorf("blob does not hash to its name: %q", line)
		}
	}
	for i, l := range pushed.Layers {
		blob := filepath.Join(mnt, "blobs", "sha256", l.Digest.Encoded())
		flag := map[int]string{0: "-tzf", 1: "-tf", 2: "--zstd"}[i]
		args := []string{flag, blob}
		if i == 2 {
			args = []string{"--zstd", "-tf", blob}
		}
		out := run(t, "tar", args...)
		if !strings.Contains(out, map[int]string{0: "etc/gzip.txt", 1: "data/plain.bin", 2: "etc/zstd.txt"}[i]) {
			t.Errorf("tar %v lists:\n%s", args, out)
		}
	}

	copyDir := filepath.Join(t.TempDir(), "copy")
	run(t, "skopeo", "copy", "oci:"+mnt+":v1", "dir:"+copyDir)
	for _, l := range pushed.Layers {
		got, err := os.ReadFile(filepath.Join(copyDir, l.Digest.Encoded()))
		if err != nil || int64(len(got)) != l.Size {
			t.Errorf("skopeo copy of layer %s: %v (%d bytes)", l.Digest, err, len(got))
		}
	}

	// umoci 0.4.7 has no zstd support: unpack the three-layer image, and
	// compare the rootfs with the files that went into it.
	three := mount(t, cacheDir, fx.reg.Reference("three/oci", "v1"))
	bundle := filepath.Join(t.TempDir(), "bundle")
	run(t, "umoci", "unpack", "--image", three+":v1", bundle)
	for _, layer := range testregistry.ThreeLayerImage(false).Layers {
		for _, f := range layer.Files {
			want, _ := readAllFrom(f.Content())
			got, err := os.ReadFile(filepath.Join(bundle, "rootfs", f.Name))
			if err != nil || string(got) != string(want) {
				t.Errorf("unpacked %s differs from what went into the image (%d vs %d bytes): %v", f.Name, len(got), len(want), err)
			}
		}
	}

	if out := imgfs(t, nil, "unmount", mnt); out.code != 0 {
		t.Fatalf("unmount: %s", describe(out))
	}
	if err := exec.Command("touch", filepath.Join(mnt, "x")).Run(); err != nil {
		t.Errorf("after unmount the mountpoint should be a plain writable directory: %v", err)
	}
	os.Remove(filepath.Join(mnt, "x"))
}

func TestMountIsLazyAndReusesTheCache(t *testing.T) {
	fx := registryFixtures(t)
	big := bigImage(t, fx)
	layer := big.Layers[0]
	proxy := testregistry.StartProxy(t, fx.reg.Host())
	ref := proxy.Host() + "/big:v1"
	cacheDir := t.TempDir()

	mnt := mount(t, cacheDir, ref)
	if got := proxy.BlobBytes(); got != big.Config.Size {
		t.Errorf("mounting pulled %d blob bytes, want only the config's %d", got, big.Config.Size)
	}
	proxy.ResetCounters()
	blob := filepath.Join(mnt, "blobs", "sha256", layer.Digest.Encoded())
	run(t, "dd", "if="+blob, "of=/dev/null", "bs=4096", "count=1")
	if got := proxy.BlobBytes(); got == 0 || got > 4<<20 {
		t.Errorf("reading the first 4 KiB pulled %d bytes, want at most 4 MiB", got)
	}
	run(t, "sh", "-c", "cat "+blob+" > /dev/null")
	if got := proxy.BlobBytes(); got > layer.Size+layer.Size/20 {
		t.Errorf("a full read pulled %d bytes for a %d-byte layer", got, layer.Size)
	}
	waitFor(t, "the layer to be committed", func() bool {
		_, err := os.Stat(filepath.Join(cacheDir, "blobs", "sha256", layer.Digest.Encoded()))
		return err == nil
	})
	imgfs(t, nil, "unmount", mnt)

	proxy.ResetCounters()
	mnt2 := mount(t, cacheDir, ref)
	run(t, "sh", "-c", "cat "+filepath.Join(mnt2, "blobs", "sha256", layer.Digest.Encoded())+" > /dev/null")
	if got := proxy.BlobBytes(); got != 0 {
		t.Errorf("a second mount pulled %d blob bytes after a full read, want 0", got)
	}
	var stats struct {
		FUSE struct {
			PassthroughOpens int `json:"passthrough_opens"`
		} `json:"fusefs"`
	}
	data, _ := os.ReadFile(filepath.Join(mnt2, ".imgfs", "stats.json"))
	if err := json.Unmarshal(data, &stats); err != nil || stats.FUSE.PassthroughOpens == 0 {
		t.Errorf("a complete blob should be opened with FUSE passthrough on this kernel: %v\n%s", err, data)
	}
}

// TestRandomAndConcurrentReadsPullEachChunkOnce counts blob bytes at a
// proxy, exactly: random 4 KiB reads pull at most 2 MiB each, and one cold
// reader of the whole blob, or 8 at once, pull it exactly once.
func TestRandomAndConcurrentReadsPullEachChunkOnce(t *testing.T) {
	fx := registryFixtures(t)
	big := bigImage(t, fx)
	layer := big.Layers[0]
	proxy := testregistry.StartProxy(t, fx.reg.Host())
	ref := proxy.Host() + "/big:v1"

	mnt := mount(t, t.TempDir(), ref)
	proxy.ResetCounters()
	f, err := os.Open(filepath.Join(mnt, "blobs", "sha256", layer.Digest.Encoded()))
	if err != nil {
		t.Fatal(err)
	}
	const reads = 100
	buf := make([]byte, 4096)
	rng := rand.New(rand.NewPCG(5, 7)) // fixed: the same offsets every run
	for i := int64(0); i < reads; i++ {
		off := rng.Int64N(layer.Size - int64(len(buf)))
		if _, err := f.ReadAt(buf, off); err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
	}
	f.Close()
	if got := proxy.BlobBytes(); got > reads*2<<20 {
		t.Errorf("%d random 4 KiB reads pulled %d bytes, more than 2 MiB per read", reads, got)
	}

	// One cold reader of the whole blob: each byte once, no more.
	mnt1 := mount(t, t.TempDir(), ref)
	proxy.ResetCounters()
	run(t, "sh", "-c", "cat "+filepath.Join(mnt1, "blobs", "sha256", layer.Digest.Encoded())+" | sha256sum | grep -q "+layer.Digest.Encoded())
	if got := proxy.BlobBytes(); got != layer.Size {
		t.Errorf("a cold cat pulled %d bytes in %d requests, want the blob's %d exactly once", got, proxy.BlobRequests(), layer.Size)
	}

	mnt2 := mount(t, t.TempDir(), ref)
	proxy.ResetCounters()
	blob := filepath.Join(mnt2, "blobs", "sha256", layer.Digest.Encoded())
	var scripts []string
	for i := 0; i < 8; i++ {
		// Each reader checks what it was served, most of it copied from
		// buffers the cache holds and the others' READs share.
		scripts = append(scripts, "cat "+blob+" | sha256sum | grep -q "+layer.Digest.Encoded())
	}
	runReaders(t, scripts)
	if got := proxy.BlobBytes(); got != layer.Size {
		t.Errorf("8 concurrent readers pulled %d bytes, want every chunk once: %d", got, layer.Size)
	}

}

func TestPrefetchFillsLayersWithoutReads(t *testing.T) {
	fx := registryFixtures(t)
	pushed := fx.three[false]
	cacheDir := t.TempDir()
	mount(t, cacheDir, fx.reg.Reference("three/oci", "v1"), "--prefetch")
	for _, l := range pushed.Layers {
		waitFor(t, "prefetch of "+l.Digest.String(), func() bool {
			_, err := os.Stat(filepath.Join(cacheDir, "blobs", "sha256", l.Digest.Encoded()))
			return err == nil
		})
	}
}

// bigImage pushes (once) an image with one 512 MiB incompressible layer.
func bigImage(t *testing.T, fx *fixtures) testregistry.Pushed {
	t.Helper()
	bigOnce.Do(func() {
		bigPushed, bigErr = fx.reg.PushImage("big", "v1", testregistry.Image{Layers: []testregistry.Layer{
			testregistry.TarLayer(testregistry.Uncompressed, testregistry.RandomFile("big.bin", 512, 512<<20)),
		}})
	})
	if bigErr != nil {
		t.Fatal(bigErr)
	}
	return bigPushed
}

func TestMountPlatformSelection(t *testing.T) {
	fx := registryFixtures(t)
	ref := fx.reg.Reference("multi", "v1")
	amd, arm := fx.multi.Images[0], fx.multi.Images[1]
	cacheDir := t.TempDir()

	names := refNames(readIndex(t, mount(t, cacheDir, ref)))
	if names["v1"].Digest != amd.Manifest.Digest {
		t.Errorf("default mount: v1 → %s, want the host's amd64 manifest %s", names["v1"].Digest, amd.Manifest.Digest)
	}
	names = refNames(readIndex(t, mount(t, cacheDir, ref, "--platform", "linux/arm64")))
	if names["v1"].Digest != arm.Manifest.Digest {
		t.Errorf("--platform linux/arm64: v1 → %s, want %s", names["v1"].Digest, arm.Manifest.Digest)
	}

	mnt := mount(t, cacheDir, ref, "--all-platforms")
	names = refNames(readIndex(t, mnt))
	for name, want := range map[string]string{
		"v1":                 amd.Manifest.Digest.String(),
		"v1-linux-amd64":     amd.Manifest.Digest.String(),
		"v1-linux-arm64-v8":  arm.Manifest.Digest.String(),
		"v1-index":           fx.multi.Index.Index.Digest.String(),
		"v1-unknown-unknown": fx.multi.Attestation.Manifest.Digest.String(),
	} {
		if names[name].Digest.String() != want {
			t.Errorf("--all-platforms: %s → %q, want %s (names: %v)", name, names[name].Digest, want, names)
		}
	}
	for _, dir := range []string{"platforms/linux-amd64", "platforms/linux-arm64-v8"} {
		if _, err := os.Stat(filepath.Join(mnt, dir, "manifest.json")); err != nil {
			t.Errorf("friendly view %s: %v", dir, err)
		}
	}
	run(t, "skopeo", "copy", "--all", "oci:"+mnt+":v1-index", "dir:"+filepath.Join(t.TempDir(), "all"))

	// Configs are fetched after the mount is ready, but all of them are.
	for _, d := range []string{amd.Config.Digest.Encoded(), arm.Config.Digest.Encoded(), fx.multi.Attestation.Manifest.Digest.Encoded()} {
		waitFor(t, "config "+d+" in the cache", func() bool {
			_, err := os.Stat(filepath.Join(cacheDir, "blobs", "sha256", d))
			return err == nil
		})
	}
}

func TestMountLifecycle(t *testing.T) {
	testfuse.Require(t)
	fx := registryFixtures(t)
	ref := fx.reg.Reference("three/oci", "v1")
	cacheDir := t.TempDir()

	t.Run("SIGINT unmounts and exits 0", func(t *testing.T) {
		mnt := t.TempDir()
		cmd := exec.Command(os.Args[0], "mount", "--cache-dir", cacheDir, ref, mnt)
		cmd.Env = append(os.Environ(), "IMGFS_RUN_MAIN=1")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the mount", func() bool { return isMounted(mnt) })
		// A signal while mounting must be handled too: send it at once.
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("exit after SIGINT: %v", err)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatal("imgfs did not exit after SIGINT")
		}
		if isMounted(mnt) {
			t.Error("still mounted after SIGINT")
		}
	})

	t.Run("SIGINT while fetching metadata mounts nothing", func(t *testing.T) {
		proxy := testregistry.StartProxy(t, fx.reg.Host())
		proxy.SetFault(testregistry.Stall.On("/manifests/"))
		mnt := t.TempDir()
		ref := proxy.Host() + "/three/oci:v1"
		cmd := exec.Command(os.Args[0], "mount", "--cache-dir", cacheDir, ref, mnt)
		cmd.Env = append(os.Environ(), "IMGFS_RUN_MAIN=1")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the manifest request", func() bool { return len(proxy.Requests()) > 0 })
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Errorf("exit after SIGINT during set-up: %v, want 1", err)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatal("imgfs did not exit after SIGINT during set-up")
		}
		if want := "imgfs: interrupted: fetching the metadata of " + ref + " stopped; nothing was mounted\n"; stderr.String() != want {
			t.Errorf("stderr %q, want %q", stderr.String(), want)
		}
		if isMounted(mnt) {
			t.Error("mounted after SIGINT during set-up")
		}
	})

	for _, tool := range [][]string{{"umount"}, {"fusermount3", "-u"}} {
		t.Run(tool[0]+" works too", func(t *testing.T) {
			mnt := t.TempDir()
			r := mustImgfs(t, "mount", "--background", "--cache-dir", cacheDir, ref, mnt)
			pid := backgroundPID(t, r.stdout)
			run(t, tool[0], append(tool[1:], mnt)...)
			waitFor(t, "the server to exit after "+tool[0], func() bool { return syscall.Kill(pid, 0) != nil })
			if isMounted(mnt) {
				t.Errorf("still mounted after %v", tool)
			}
		})
	}

	t.Run("background and unmount", func(t *testing.T) {
		mnt := t.TempDir()
		mustImgfs(t, "mount", "--background", "--cache-dir", cacheDir, ref, mnt)
		if !isMounted(mnt) {
			t.Fatal("--background returned before the mount was ready")
		}
		r := mustImgfs(t, "unmount", mnt)
		if !strings.Contains(r.stdout, "unmounted") || isMounted(mnt) {
			t.Errorf("unmount: %s", describe(r))
		}
	})

	t.Run("kill -9 then unmount clears the stale mount", func(t *testing.T) {
		mnt := t.TempDir()
		r := mustImgfs(t, "mount", "--background", "--cache-dir", cacheDir, ref, mnt)
		pid := backgroundPID(t, r.stdout)
		syscall.Kill(pid, syscall.SIGKILL)
		waitFor(t, "the daemon to die", func() bool { return syscall.Kill(pid, 0) != nil })
		again := imgfs(t, nil, "mount", "--cache-dir", cacheDir, ref, mnt)
		wantError(t, again, 1, "stale", "imgfs unmount")
		r = mustImgfs(t, "unmount", mnt)
		if !strings.Contains(r.stdout, "stale") || isMounted(mnt) {
			t.Errorf("unmount of a stale mount: %s", describe(r))
		}
	})
}

func TestMountBadInput(t *testing.T) {
	testfuse.Require(t)
	fx := registryFixtures(t)
	ref := fx.reg.Reference("three/oci", "v1")
	cacheDir := t.TempDir()
	notDir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notDir, nil, 0o644)
	notEmpty := t.TempDir()
	os.WriteFile(filepath.Join(notEmpty, "x"), nil, 0o644)
	mounted := mount(t, cacheDir, ref)

	tests := []struct {
		name  string
		args  []string
		parts []string
	}{
		{"missing mountpoint", []string{ref, "/nonexistent/mnt"}, []string{"/nonexistent/mnt", "does not exist"}},
		{"not a directory", []string{ref, notDir}, []string{notDir, "not a directory"}},
		{"not empty", []string{ref, notEmpty}, []string{notEmpty, "not empty"}},
		{"already mounted", []string{ref, mounted}, []string{mounted, "already"}},
		{"reference not found", []string{fx.reg.Reference("three/oci", "nope"), t.TempDir()}, []string{"not found"}},
		{"registry unreachable", []string{"127.0.0.1:1/app:v1", t.TempDir()}, []string{"refused"}},
		{"offline without metadata", []string{"--offline", fx.reg.Reference("multi", "v1"), t.TempDir()}, []string{"--offline", "not in the cache"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, bg := range []bool{false, true} {
				args := []string{"mount", "--cache-dir", t.TempDir()}
				if bg {
					args = append(args, "--background")
				}
				r := imgfs(t, nil, append(args, tt.args...)...)
				wantError(t, r, 1, tt.parts...)
			}
		})
	}
}

func TestMountSurvivesRegistryOutage(t *testing.T) {
	fx := registryFixtures(t)
	pushed := fx.three[false]
	proxy := testregistry.StartProxy(t, fx.reg.Host())
	cacheDir := t.TempDir()
	mnt := mount(t, cacheDir, proxy.Host()+"/three/oci:v1", "--fetch-timeout", "2s")
	large := filepath.Join(mnt, "blobs", "sha256", pushed.Layers[2].Digest.Encoded())
	run(t, "dd", "if="+large, "of=/dev/null", "bs=1M", "count=1")

	proxy.SetFault(testregistry.Down)
	// Metadata stays browsable; the file views (rootfs/, layers/<n>/) need
	// layer bytes, so only their tops are listed.
	run(t, "ls", "-lR", filepath.Join(mnt, "blobs"))
	run(t, "ls", "-l", mnt, filepath.Join(mnt, "layers"))
	run(t, "dd", "if="+large, "of=/dev/null", "bs=1M", "count=1") // cached bytes
	start := time.Now()
	out, err := exec.Command("dd", "if="+large, "of=/dev/null", "bs=1M", "skip=20", "count=1", "iflag=direct").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Input/output error") {
		t.Errorf("read of uncached bytes with the registry down: %v\n%s", err, out)
	}
	if d := time.Since(start); d > 60*time.Second {
		t.Errorf("the failing read took %s, want it bounded by --fetch-timeout", d)
	}

	proxy.SetFault(testregistry.None)
	run(t, "dd", "if="+large, "of=/dev/null", "bs=1M", "skip=20", "count=1")
}

func TestMountOffline(t *testing.T) {
	fx := registryFixtures(t)
	pushed := fx.three[false]
	ref := fx.reg.Reference("three/oci", "v1")
	cacheDir := t.TempDir()
	mnt := mount(t, cacheDir, ref)
	small := pushed.Layers[0]
	run(t, "sh", "-c", "cat "+filepath.Join(mnt, "blobs", "sha256", small.Digest.Encoded())+" > /dev/null")
	imgfs(t, nil, "unmount", mnt)

	logFile := filepath.Join(t.TempDir(), "mount.log")
	off := mount(t, cacheDir, ref, "--offline", "--log-file", logFile)
	run(t, "sh", "-c", "cat "+filepath.Join(off, "blobs", "sha256", small.Digest.Encoded())+" > /dev/null")
	large := pushed.Layers[2]
	out, err := exec.Command("dd", "if="+filepath.Join(off, "blobs", "sha256", large.Digest.Encoded()), "of=/dev/null", "bs=4096", "count=1").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Input/output error") {
		t.Errorf("offline read of an uncached layer: %v\n%s", err, out)
	}
	waitFor(t, "a log line naming the blob", func() bool {
		data, _ := os.ReadFile(logFile)
		return strings.Contains(string(data), large.Digest.String())
	})
}
