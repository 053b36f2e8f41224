package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/stargz-snapshotter/estargz"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/cache/artifacts"
	"github.com/imgfs/imgfs/internal/imagemount"
	"github.com/imgfs/imgfs/internal/layer"
	"github.com/imgfs/imgfs/internal/layertest"
	"github.com/imgfs/imgfs/internal/testregistry"
)

// tarEntry is one entry of a tar a view test writes itself, with what the
// harness's File cannot express: owners, xattrs, devices, whiteouts.
type tarEntry struct {
	name         string
	typ          byte
	mode         int64
	uid, gid     int
	link         string
	data         []byte
	xattrs       map[string]string
	major, minor int64
}

var viewTime = time.Date(2023, 6, 1, 12, 0, 0, 0, time.UTC)

func mkTar(t *testing.T, ents ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid, Linkname: e.link,
			ModTime: viewTime, Devmajor: e.major, Devminor: e.minor, Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		if len(e.xattrs) > 0 {
			h.PAXRecords = map[string]string{}
			for k, v := range e.xattrs {
				h.PAXRecords["SCHILY.xattr."+k] = v
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func dirEntry(name string, mode int64) tarEntry {
	return tarEntry{name: name, typ: tar.TypeDir, mode: mode}
}
func fileEntry(name string, data string) tarEntry {
	return tarEntry{name: name, mode: 0o644, data: []byte(data)}
}

// osRelease is a 4 KiB file, the size of the reads the byte counts test.
func osRelease(version string) string {
	s := "NAME=\"imgfs test\"\nVERSION_ID=" + version + "\n"
	return s + strings.Repeat("#", 4096-len(s)-1) + "\n"
}

func randomData(seed, n int64) []byte {
	b, _ := io.ReadAll(testregistry.RandomBytes(seed, n))
	return b
}

// viewLayers is a three-layer image with every kind of file, a whiteout of
// a file and of a directory, and an opaque directory. The base layer holds
// 6 MiB of random bytes, so gzip gets two spans and eStargz many chunks.
func viewLayers(t *testing.T) [][]byte {
	cap := "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	base := mkTar(t,
		dirEntry("etc/", 0o755),
		fileEntry("etc/os-release", osRelease("1")),
		fileEntry("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
		fileEntry("etc/motd", "welcome\n"),
		tarEntry{name: "etc/shadow", mode: 0o640, gid: 42, data: []byte("root:*:19000::::::\n")},
		dirEntry("bin/", 0o755),
		tarEntry{name: "bin/busybox", mode: 0o755, data: randomData(1, 300<<10)},
		tarEntry{name: "bin/sh", typ: tar.TypeSymlink, link: "busybox", mode: 0o777},
		tarEntry{name: "bin/ls", typ: tar.TypeLink, link: "bin/busybox"},
		tarEntry{name: "bin/ping", mode: 0o4755, data: []byte("ping\n"), xattrs: map[string]string{"security.capability": cap}},
		dirEntry("dev/", 0o755),
		tarEntry{name: "dev/null", typ: tar.TypeChar, mode: 0o666, major: 1, minor: 3},
		tarEntry{name: "dev/sda", typ: tar.TypeBlock, mode: 0o660, gid: 6, major: 8},
		dirEntry("run/", 0o755),
		tarEntry{name: "run/initctl", typ: tar.TypeFifo, mode: 0o600},
		tarEntry{name: "home/user/", typ: tar.TypeDir, mode: 0o700, uid: 1000, gid: 1000},
		tarEntry{name: "home/user/notes", mode: 0o600, uid: 1000, gid: 1000, data: []byte("notes\n")},
		dirEntry("opt/", 0o755), dirEntry("opt/old/", 0o755), fileEntry("opt/old/a", "a\n"),
		dirEntry("opt/old/sub/", 0o750), fileEntry("opt/old/sub/b", "b\n"),
		dirEntry("var/", 0o755), dirEntry("var/cache/", 0o755), fileEntry("var/cache/x", "x\n"), fileEntry("var/cache/y", "y\n"),
		dirEntry("var/lib/", 0o755), dirEntry("var/lib/dpkg/", 0o755),
		fileEntry("var/lib/dpkg/status", "Package: imgfs\nStatus: install ok installed\n"),
		dirEntry("usr/", 0o755), dirEntry("usr/share/", 0o755),
		tarEntry{name: "usr/share/big.bin", mode: 0o644, data: randomData(2, 6<<20)},
		dirEntry("usr/lib/", 0o755),
		fileEntry("usr/lib/libfoo.so.1", osRelease("libfoo")),
		tarEntry{name: "usr/lib/libfoo.so", typ: tar.TypeSymlink, link: "libfoo.so.1", mode: 0o777},
	)
	upper := mkTar(t,
		dirEntry("etc/", 0o755),
		fileEntry("etc/.wh.motd", ""),
		fileEntry("etc/os-release", osRelease("2")),
		fileEntry("opt/.wh.old", ""),
		dirEntry("var/cache/", 0o775),
		fileEntry("var/cache/.wh..wh..opq", ""),
		fileEntry("var/cache/z", "z\n"),
	)
	top := mkTar(t,
		fileEntry("etc/hostname", "imgfs\n"),
		tarEntry{name: "etc/hostname.bak", typ: tar.TypeLink, link: "etc/hostname"},
		fileEntry("usr/lib/libbar.so", "bar\n"),
	)
	return [][]byte{base, upper, top}
}

// viewImages pushes the view image in every blob format, once per test
// binary.
var viewImages = struct {
	once   sync.Once
	err    error
	pushed map[testregistry.BlobFormat]testregistry.Pushed
	blobs  map[testregistry.BlobFormat][]testregistry.PreparedLayer
}{}

var allBlobFormats = []testregistry.BlobFormat{testregistry.BlobGzip, testregistry.BlobTar, testregistry.BlobZstd, testregistry.BlobEStargz, testregistry.BlobZstdChunked}

func pushViewImages(t *testing.T, fx *fixtures) {
	t.Helper()
	viewImages.once.Do(func() {
		viewImages.pushed = map[testregistry.BlobFormat]testregistry.Pushed{}
		viewImages.blobs = map[testregistry.BlobFormat][]testregistry.PreparedLayer{}
		raws := viewLayers(t)
		for _, f := range allBlobFormats {
			var layers []testregistry.PreparedLayer
			for _, raw := range raws {
				l, err := testregistry.LayerBlob(raw, f)
				if err != nil {
					viewImages.err = err
					return
				}
				layers = append(layers, l)
			}
			viewImages.blobs[f] = layers
			if viewImages.pushed[f], viewImages.err = fx.reg.PushPrepared("view/"+f.String(), "v1", layers); viewImages.err != nil {
				return
			}
		}
	})
	if viewImages.err != nil {
		t.Fatal(viewImages.err)
	}
}

// eStargzBuildArtifacts are what estargz.Build adds to a layer's tar, which
// umoci unpacks and the view hides (see the README).
var eStargzBuildArtifacts = []string{estargz.PrefetchLandmark, estargz.NoPrefetchLandmark, estargz.TOCTarName}

// TestViewMatchesUmoci compares rootfs/ with what umoci unpack makes of the
// same image, for every layer format. umoci 0.4.7 reads no zstd, so the
// zstd and zstd:chunked views are compared with the unpack of the gzip
// image, which holds the same tars.
func TestViewMatchesUmoci(t *testing.T) {
	fx := registryFixtures(t)
	pushViewImages(t, fx)
	unpacked := map[testregistry.BlobFormat]string{}
	bundles := t.TempDir()
	for _, f := range allBlobFormats {
		t.Run(f.String(), func(t *testing.T) {
			mnt := mount(t, t.TempDir(), fx.reg.Host()+"/view/"+f.String()+":v1")
			want := unpacked[testregistry.BlobGzip]
			if f != testregistry.BlobZstd && f != testregistry.BlobZstdChunked {
				bundle := filepath.Join(bundles, f.String())
				run(t, "umoci", "unpack", "--image", mnt+":v1", bundle)
				want = filepath.Join(bundle, "rootfs")
				if f == testregistry.BlobEStargz {
					for _, name := range eStargzBuildArtifacts {
						os.Remove(filepath.Join(want, name)) // each layer has one landmark or the other
					}
				}
				unpacked[f] = want
			}
			if want == "" {
				t.Fatal("no gzip unpack to compare with")
			}
			got := filepath.Join(mnt, "rootfs")
			compareTrees(t, want, got)
			diffTrees(t, want, got)

			// The per-layer tree shows whiteouts as the tar holds them.
			layer1 := filepath.Join(mnt, "layers", "1-"+viewImages.pushed[f].Layers[1].Digest.Encoded()[:12])
			for _, name := range []string{"etc/.wh.motd", "opt/.wh.old", "var/cache/.wh..wh..opq", "var/cache/z"} {
				if _, err := os.Lstat(filepath.Join(layer1, name)); err != nil {
					t.Errorf("layer 1's own tree: %v", err)
				}
			}
			buf := make([]byte, 64)
			if n, err := unix.Lgetxattr(filepath.Join(got, "bin/ping"), "security.capability", buf); err != nil || n != 20 {
				t.Errorf("security.capability of rootfs/bin/ping: %d bytes, %v", n, err)
			}
		})
	}
}

var specialDiff = regexp.MustCompile(`^File .* is a (fifo|character special file|block special file) while file .* is a (fifo|character special file|block special file)$`)

// diffTrees runs diff -r, which reports every special file as a difference:
// those are checked by compareTrees instead.
func diffTrees(t *testing.T, want, got string) {
	t.Helper()
	out, _ := exec.Command("diff", "-r", "--no-dereference", want, got).CombinedOutput()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		special := specialDiff.FindStringSubmatch(line)
		if special == nil || special[1] != special[2] {
			t.Errorf("diff -r: %s", line)
		}
	}
}

// fileStat is what the stat comparison checks.
type fileStat struct {
	Mode          os.FileMode
	UID, GID      uint32
	Size          int64
	Nlink         uint64
	Link          string
	Rdev          uint64
	Capability    string
	ContentLength int
}

func statTree(t *testing.T, root string) map[string]fileStat {
	t.Helper()
	out := map[string]fileStat{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		fi, _ := d.Info()
		s := fileStat{Mode: fi.Mode(), UID: st.Uid, GID: st.Gid, Nlink: uint64(st.Nlink)}
		if !fi.IsDir() {
			s.Size = st.Size
		}
		switch fi.Mode().Type() {
		case fs.ModeSymlink:
			s.Link, _ = os.Readlink(p)
		case fs.ModeDevice | fs.ModeCharDevice, fs.ModeDevice:
			s.Rdev = st.Rdev
		}
		buf := make([]byte, 64)
		if n, err := unix.Lgetxattr(p, "security.capability", buf); err == nil {
			s.Capability = string(buf[:n])
		}
		out[rel] = s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func compareTrees(t *testing.T, want, got string) {
	t.Helper()
	w, g := statTree(t, want), statTree(t, got)
	var names []string
	for n := range w {
		names = append(names, n)
	}
	for n := range g {
		if _, ok := w[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		ws, wok := w[n]
		gs, gok := g[n]
		switch {
		case !gok:
			t.Errorf("%s: in umoci's rootfs, missing from the view", n)
		case !wok:
			t.Errorf("%s: in the view, not in umoci's rootfs", n)
		case ws != gs:
			t.Errorf("%s: umoci %+v, view %+v", n, ws, gs)
		}
	}
	if len(g) < 30 {
		t.Errorf("the view lists only %d files", len(g))
	}
}

// viewStatsOf reads the file views' part of .imgfs/stats.json.
func viewStatsOf(t *testing.T, mnt string) []imagemount.LayerStats {
	t.Helper()
	var doc struct {
		Cache struct {
			Views []imagemount.LayerStats `json:"views"`
		} `json:"cache"`
	}
	data, err := os.ReadFile(filepath.Join(mnt, ".imgfs", "stats.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Cache.Views
}

// TestViewEStargzPullsTOCAndChunks: a cold mount and a cat of one file pull
// each layer's footer and TOC (with the layer's last layer.TOCReadAhead bytes),
// and the chunk of that file, each by its own range and nothing more, for
// eStargz and zstd:chunked; a corrupted chunk is refused with EIO, and
// fetched afresh after the backoff.
func TestViewEStargzPullsTOCAndChunks(t *testing.T) {
	fx := registryFixtures(t)
	pushViewImages(t, fx)
	for _, f := range []testregistry.BlobFormat{testregistry.BlobEStargz, testregistry.BlobZstdChunked} {
		t.Run(f.String(), func(t *testing.T) {
			img := viewImages.pushed[f]
			proxy := testregistry.StartProxy(t, fx.reg.Host())
			logFile := filepath.Join(t.TempDir(), "mount.log")
			mnt := mount(t, t.TempDir(), proxy.Host()+"/view/"+f.String()+":v1", "--log-file", logFile)
			proxy.ResetCounters()
			data, err := os.ReadFile(filepath.Join(mnt, "rootfs/etc/os-release"))
			if err != nil || string(data) != osRelease("2") {
				t.Fatalf("cat rootfs/etc/os-release: %v", err)
			}
			need, chunks := tocAndChunkBytes(t, f, viewImages.blobs[f], "etc/os-release")
			got := proxy.BlobBytes()
			t.Logf("mount + cat rootfs/etc/os-release pulled %d bytes in %d requests; the footers and TOCs, each layer's last %d bytes and the file's chunks (%d) make %d", got, proxy.BlobRequests(), layer.TOCReadAhead, chunks, need)
			if got == 0 || got > need {
				t.Errorf("pulled %d bytes; want at most the footers and TOCs, each layer's last %d bytes and the file's chunks, %d", got, layer.TOCReadAhead, need)
			}
			if f != testregistry.BlobEStargz {
				// A cat of each layer's blob through the mount then pulls
				// what the index reads left, once: the blobs' bytes, plus at
				// most the file's chunk again, read and dropped where it lies
				// between missing pieces less than blobfsm.ExactGap apart.
				var sizes int64
				for _, l := range img.Layers {
					sizes += l.Size
					run(t, "sh", "-c", "cat "+filepath.Join(mnt, "blobs", "sha256", l.Digest.Encoded())+" > /dev/null")
				}
				if got := proxy.BlobBytes(); got < sizes || got > sizes+chunks {
					t.Errorf("with the blobs read whole, pulled %d bytes in all; want the blobs' %d, plus at most the file's chunk (%d)", got, sizes, chunks)
				}
				t.Logf("with the blobs read whole, pulled %d bytes in all: the blobs' %d and %d more", proxy.BlobBytes(), sizes, proxy.BlobBytes()-sizes)
				return
			}
			// The proxy flips a byte in the middle of every response of the
			// base layer: the chunks of big.bin fail their digests.
			refusedThenRefetched(t, proxy, img.Layers[0].Digest.Encoded(), filepath.Join(mnt, "rootfs/usr/share/big.bin"), randomData(2, 6<<20))
			if _, err := os.ReadFile(filepath.Join(mnt, "rootfs/var/lib/dpkg/status")); err != nil {
				t.Errorf("the rest of the view: %v", err)
			}
			waitForLog(t, logFile, "usr/share/big.bin")
			waitForLog(t, logFile, "its fetched bytes were dropped and will be fetched afresh")
		})
	}
}

// tocAndChunkBytes returns the bytes a cold mount of layers (eStargz or
// zstd:chunked) and a read of name need, and those of name's chunks on
// their own (see layertest.TOCReadBytes).
func tocAndChunkBytes(t *testing.T, f testregistry.BlobFormat, layers []testregistry.PreparedLayer, name string) (need, chunks int64) {
	t.Helper()
	var blobs [][]byte
	for _, l := range layers {
		blobs = append(blobs, l.Data)
	}
	need, chunks, err := layertest.TOCReadBytes(blobs, f == testregistry.BlobZstdChunked, name, layer.TOCReadAhead)
	if err != nil {
		t.Fatal(err)
	}
	return need, chunks
}

// refusedThenRefetched reads 64 KiB from the middle of path, so that the
// blob is not fetched whole and verified, while the proxy corrupts every
// response for the layer named by hex: that must fail with EIO. With the
// fault cleared, it reads again until the mismatch backoff (1 s) is over,
// which must give the right bytes: the bad ones were dropped from the
// cache, not kept to fail every read.
func refusedThenRefetched(t *testing.T, proxy *testregistry.Proxy, hex, path string, content []byte) {
	t.Helper()
	off := int64(len(content) / 2)
	want := content[off : off+64<<10]
	readMiddle := func() ([]byte, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		b := make([]byte, len(want))
		_, err = f.ReadAt(b, off)
		return b, err
	}
	proxy.SetFault(testregistry.Corrupt.On(hex))
	if _, err := readMiddle(); !isEIO(err) {
		t.Errorf("reading %s with its bytes corrupted: %v, want EIO", path, err)
	}
	proxy.SetFault(testregistry.None)
	var got []byte
	var err error
	waitFor(t, "a re-read after the backoff", func() bool {
		got, err = readMiddle()
		return !isEIO(err)
	})
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("re-read of %s at %d after the fault cleared: %v; want the right %d bytes", path, off, err, len(want))
	}
}

func isEIO(err error) bool { return err != nil && strings.Contains(err.Error(), syscall.EIO.Error()) }

func waitForLog(t *testing.T, logFile, substr string) {
	t.Helper()
	waitFor(t, "a log line naming "+substr, func() bool {
		b, _ := os.ReadFile(logFile)
		return bytes.Contains(b, []byte(substr))
	})
}

// TestViewUncompressedFindReadsHeaders: find over an uncompressed layer
// reads its tar headers by range, not the files.
func TestViewUncompressedFindReadsHeaders(t *testing.T) {
	fx := registryFixtures(t)
	var ents []tarEntry
	for i := range 40 {
		ents = append(ents, fileEntry("etc/conf"+string(rune('a'+i%26))+string(rune('a'+i/26)), strings.Repeat("c", 3000)))
	}
	ents = append(ents, tarEntry{name: "data/zero.img", mode: 0o644, data: make([]byte, 64<<20)}, fileEntry("data/after", "after\n"))
	l, err := testregistry.LayerBlob(mkTar(t, ents...), testregistry.BlobTar)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fx.reg.PushPrepared("view/plain", "v1", []testregistry.PreparedLayer{l}); err != nil {
		t.Fatal(err)
	}
	proxy := testregistry.StartProxy(t, fx.reg.Host())
	mnt := mount(t, t.TempDir(), proxy.Host()+"/view/plain:v1")
	proxy.ResetCounters()
	out := run(t, "find", filepath.Join(mnt, "rootfs"), "-type", "f")
	if n := strings.Count(out, "\n"); n != 42 {
		t.Errorf("find listed %d files, want 42", n)
	}
	got := proxy.BlobBytes()
	t.Logf("find rootfs -type f pulled %d of the layer's %d bytes (%.2f%%)", got, len(l.Data), 100*float64(got)/float64(len(l.Data)))
	if got > int64(len(l.Data))/20 {
		t.Errorf("find pulled %d bytes, more than 5%% of the %d-byte layer", got, len(l.Data))
	}
}

// TestViewGzipIndexIsStoredAndServesSpans: the first mount indexes each
// gzip layer in one verified pass and stores the index; a later mount with
// the blobs gone lists at once and reads a 4 KiB file by fetching only the
// span that holds it, and refuses a corrupted span with EIO, fetching it
// afresh once the backoff is over.
func TestViewGzipIndexIsStoredAndServesSpans(t *testing.T) {
	fx := registryFixtures(t)
	pushViewImages(t, fx)
	img := viewImages.pushed[testregistry.BlobGzip]
	proxy := testregistry.StartProxy(t, fx.reg.Host())
	cacheDir := t.TempDir()
	ref := proxy.Host() + "/view/gzip:v1"
	mnt := mount(t, cacheDir, ref)
	if _, err := os.ReadDir(filepath.Join(mnt, "rootfs")); err != nil {
		t.Fatal(err)
	}
	for _, s := range viewStatsOf(t, mnt) {
		if s.State != "ready" || s.Source != "pass" || s.IndexedRead != s.Size {
			t.Errorf("layer %s after ls: %+v, want ready from a pass over all of it", s.Layer, s)
		}
		t.Logf("layer %s: %d bytes, index %d bytes (%.2f%% of the layer)", s.Layer.Encoded()[:12], s.Size, s.IndexBytes, 100*float64(s.IndexBytes)/float64(s.Size))
	}
	imgfs(t, nil, "unmount", mnt)

	store, err := cache.Open(cacheDir, cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	base := img.Layers[0]
	data, ok, err := artifacts.ReadLayerIndex(store, base, layer.IndexVersion)
	store.Close()
	if err != nil || !ok {
		t.Fatalf("no stored index of the base layer: %v", err)
	}
	idx, err := layer.UnmarshalIndex(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range img.Layers {
		if err := os.Remove(filepath.Join(cacheDir, "blobs", "sha256", l.Digest.Encoded())); err != nil {
			t.Fatal(err)
		}
	}

	proxy.ResetCounters()
	mnt = mount(t, cacheDir, ref)
	if _, err := os.ReadDir(filepath.Join(mnt, "rootfs", "usr", "lib")); err != nil {
		t.Fatal(err)
	}
	if got := proxy.BlobBytes(); got != 0 {
		t.Errorf("mount and ls with stored indexes (and the config cached) pulled %d blob bytes, want 0", got)
	}
	// Before the cat below fetches the last span: the read of big.bin then
	// leaves the blob partial, so no whole-blob verdict drops its bad bytes.
	refusedThenRefetched(t, proxy, base.Digest.Encoded(), filepath.Join(mnt, "rootfs/usr/share/big.bin"), randomData(2, 6<<20))
	proxy.ResetCounters()
	got, err := os.ReadFile(filepath.Join(mnt, "rootfs/usr/lib/libfoo.so.1"))
	if err != nil || string(got) != osRelease("libfoo") {
		t.Fatalf("cat of a 4 KiB file with the blob evicted: %v", err)
	}
	var span [2]int64
	for _, e := range idx.Entries {
		if e.Name == "usr/lib/libfoo.so.1" {
			k := 0
			for i, c := range idx.Checkpoints {
				if c.Out <= e.DataOffset {
					k = i
				}
			}
			span = [2]int64{idx.Checkpoints[k].In, base.Size}
			if k+1 < len(idx.Checkpoints) {
				span[1] = idx.Checkpoints[k+1].In
			}
		}
	}
	pulled := proxy.BlobBytes()
	t.Logf("%d checkpoints; the file's span is [%d,%d) of %d bytes; the cat pulled %d bytes", len(idx.Checkpoints), span[0], span[1], base.Size, pulled)
	if len(idx.Checkpoints) < 2 {
		t.Errorf("the index of a 6 MiB layer has %d checkpoints, want at least 2", len(idx.Checkpoints))
	}
	if pulled == 0 || pulled > span[1]-span[0] {
		t.Errorf("the cat pulled %d bytes; want at most its span, %d", pulled, span[1]-span[0])
	}

}

// TestViewFileCopyServesPassthrough: a file of the view read whole once is
// copied into the cache from its verified bytes, and later opens are FUSE
// passthrough from the copy, with no more READs; the copy survives the
// mount, and a fresh mount serves it by passthrough at once.
func TestViewFileCopyServesPassthrough(t *testing.T) {
	fx := registryFixtures(t)
	pushViewImages(t, fx)
	cacheDir := t.TempDir()
	ref := fx.reg.Host() + "/view/gzip:v1"
	mnt := mount(t, cacheDir, ref)
	big := filepath.Join(mnt, "rootfs/usr/share/big.bin")
	want := randomData(2, 6<<20)
	catEquals := func() {
		t.Helper()
		if got, err := os.ReadFile(big); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("cat big.bin: %d bytes, %v", len(got), err)
		}
	}
	catEquals()
	waitFor(t, "the file copy", func() bool {
		for _, s := range viewStatsOf(t, mnt) {
			if s.FileCopies > 0 {
				return true
			}
		}
		return false
	})
	before := mountStatsOf(t, mnt).FUSE
	catEquals()
	after := mountStatsOf(t, mnt).FUSE
	if after.PassthroughOpens != before.PassthroughOpens+1 || after.Reads != before.Reads {
		t.Errorf("re-read after the copy: passthrough opens %d → %d, READs %d → %d; want one more passthrough open and no READs",
			before.PassthroughOpens, after.PassthroughOpens, before.Reads, after.Reads)
	}
	copies, _ := filepath.Glob(filepath.Join(cacheDir, "files", "v*", "*"))
	if len(copies) != 1 {
		t.Errorf("file copies in the cache: %v, want one", copies)
	}
	imgfs(t, nil, "unmount", mnt)

	mnt = mount(t, cacheDir, ref)
	big = filepath.Join(mnt, "rootfs/usr/share/big.bin")
	catEquals()
	if s := mountStatsOf(t, mnt).FUSE; s.PassthroughOpens != 1 || s.Reads != 0 {
		t.Errorf("a fresh mount's first cat of a copied file: %+v, want one passthrough open and no READs", s)
	}
}

// TestViewBadInput: entries that cannot be served give EIO and a log line
// naming the layer and the entry, and the rest of the view works; a layer
// whose stream breaks (a bad header checksum, a truncated gzip stream) is
// broken: its own tree and rootfs/ give EIO, and the other layers' trees
// work.
func TestViewBadInput(t *testing.T) {
	fx := registryFixtures(t)
	good := mkTar(t, fileEntry("etc/ok", "ok\n"))
	hostile := mkTar(t,
		fileEntry("../escape", "x\n"),
		fileEntry("/abs/file", "abs\n"),
		tarEntry{name: "etc/dangling", typ: tar.TypeLink, link: "etc/nowhere"},
		fileEntry("etc/before-corrupt", "b\n"),
	)
	// A header whose checksum is wrong, then a file the walk never reaches.
	bad := mkTar(t, fileEntry("etc/after-corrupt", "a\n"))
	bad[0] ^= 0xff
	corrupt := append(bytes.Clone(hostile[:len(hostile)-1024]), bad...)
	truncated := mkTar(t, fileEntry("etc/early", "early\n"), tarEntry{name: "etc/cut", mode: 0o644, data: randomData(3, 1<<20)})
	var layers []testregistry.PreparedLayer
	for _, raw := range [][]byte{good, hostile, corrupt} {
		l, err := testregistry.LayerBlob(raw, testregistry.BlobTar)
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	tl, err := testregistry.LayerBlob(truncated, testregistry.BlobGzip)
	if err != nil {
		t.Fatal(err)
	}
	tl.Data = tl.Data[:len(tl.Data)/2]
	layers = append(layers, tl)
	if _, err := fx.reg.PushPrepared("view/hostile", "v1", layers[:2]); err != nil {
		t.Fatal(err)
	}
	broken, err := fx.reg.PushPrepared("view/bad", "v1", []testregistry.PreparedLayer{layers[0], layers[2], layers[3]})
	if err != nil {
		t.Fatal(err)
	}
	estargzBase, err := testregistry.LayerBlob(good, testregistry.BlobEStargz)
	if err != nil {
		t.Fatal(err)
	}
	wrongTOC := estargzBase
	wrongTOC.Annotations = map[string]string{estargz.TOCJSONDigestAnnotation: "sha256:" + strings.Repeat("0", 64)}
	badTOC, err := fx.reg.PushPrepared("view/badtoc", "v1", []testregistry.PreparedLayer{layers[0], wrongTOC})
	if err != nil {
		t.Fatal(err)
	}

	logFile := filepath.Join(t.TempDir(), "mount.log")
	mnt := mount(t, t.TempDir(), fx.reg.Host()+"/view/hostile:v1", "--log-file", logFile)
	root := filepath.Join(mnt, "rootfs")
	if b, err := os.ReadFile(filepath.Join(root, "etc/ok")); err != nil || string(b) != "ok\n" {
		t.Errorf("a good file beside bad entries: %q, %v", b, err)
	}
	for _, name := range []string{"abs/file", "etc/before-corrupt"} {
		if _, err := os.ReadFile(filepath.Join(root, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, name := range []string{"escape", "../escape"} {
		if _, err := os.Lstat(filepath.Join(root, name)); err == nil {
			t.Errorf("%s is in the view", name)
		}
	}
	if _, err := os.ReadFile(filepath.Join(root, "etc/dangling")); !isEIO(err) {
		t.Errorf("a hard link to a missing target: %v, want EIO", err)
	}
	for _, s := range []string{"../escape", "etc/dangling"} {
		waitForLog(t, logFile, s)
	}

	mnt = mount(t, t.TempDir(), fx.reg.Host()+"/view/bad:v1", "--log-file", logFile)
	if _, err := os.ReadDir(filepath.Join(mnt, "rootfs")); !isEIO(err) {
		t.Errorf("ls rootfs/ over broken layers: %v, want EIO", err)
	}
	for i, what := range map[int]string{1: "a layer with a corrupt header", 2: "a truncated gzip layer"} {
		if _, err := os.ReadDir(filepath.Join(mnt, "layers", fmt.Sprintf("%d-%s", i, broken.Layers[i].Digest.Encoded()[:12]))); !isEIO(err) {
			t.Errorf("ls of %s: %v, want EIO", what, err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(mnt, "layers", "0-"+broken.Layers[0].Digest.Encoded()[:12], "etc/ok")); err != nil || string(b) != "ok\n" {
		t.Errorf("the good layer's tree beside broken layers: %q, %v", b, err)
	}
	for _, s := range []string{"unexpected EOF", "etc/cut", "before-corrupt"} {
		waitForLog(t, logFile, s)
	}

	mnt = mount(t, t.TempDir(), fx.reg.Host()+"/view/badtoc:v1", "--log-file", logFile)
	if _, err := os.ReadDir(filepath.Join(mnt, "layers", "1-"+badTOC.Layers[1].Digest.Encoded()[:12])); !isEIO(err) {
		t.Errorf("ls of a layer whose TOC does not match its annotation: %v, want EIO", err)
	}
	if b, err := os.ReadFile(filepath.Join(mnt, "layers", "0-"+badTOC.Layers[0].Digest.Encoded()[:12], "etc/ok")); err != nil || string(b) != "ok\n" {
		t.Errorf("the other layer's tree: %q, %v", b, err)
	}
	waitForLog(t, logFile, badTOC.Layers[1].Digest.String())
}

// gnuTarOf tars dir's tree with GNU tar, deterministically, in the POSIX
// (PAX) format with sparse files stored as PAX 1.0 sparse entries: a way
// to build sparse members that archive/tar cannot write.
func gnuTarOf(t *testing.T, dir string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "layer.tar")
	run(t, "tar", "--sparse", "--sparse-version=1.0", "--format=posix", "--sort=name", "--mtime=@0",
		"--owner=0", "--group=0", "--numeric-owner", "--pax-option=delete=atime,delete=ctime,exthdr.name=%d/PaxHeaders/%f",
		"-C", dir, "-cf", out, ".")
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestViewPlatformsAndTarEdgeCases mounts a two-platform index with
// --all-platforms: each platforms/<p>/rootfs/ shows its own files. The
// amd64 image holds a PAX long name, a GNU long name, a sparse file and a
// 9 GiB sparse file (PAX size, a few KiB of data in the tar), each with
// the right size and content.
func TestViewPlatformsAndTarEdgeCases(t *testing.T) {
	fx := registryFixtures(t)
	src := t.TempDir()
	paxName := "usr/share/" + strings.Repeat("a-long-directory-name/", 5) + "pax-long-name.txt"
	gnuName := "usr/share/" + strings.Repeat("another-long-directory/", 5) + "gnu-long-name.txt"
	const hugeSize = 9 << 30
	sparseData := []byte("sparse data in the middle\n")
	mustWrite := func(name string, data []byte, size, at int64) {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(data, at); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite(paxName, []byte("pax\n"), 4, 0)
	mustWrite("data/sparse.img", sparseData, 1<<20, 512<<10)
	mustWrite("data/huge.img", []byte("end\n"), hugeSize, hugeSize-4096)
	var gnu bytes.Buffer
	tw := tar.NewWriter(&gnu)
	if err := tw.WriteHeader(&tar.Header{Name: gnuName, Mode: 0o644, Size: 4, ModTime: viewTime, Typeflag: tar.TypeReg, Format: tar.FormatGNU}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte("gnu\n"))
	tw.Close()

	push := func(repo string, arch string, raws ...[]byte) testregistry.Pushed {
		var layers []testregistry.PreparedLayer
		for _, raw := range raws {
			l, err := testregistry.LayerBlob(raw, testregistry.BlobGzip)
			if err != nil {
				t.Fatal(err)
			}
			layers = append(layers, l)
		}
		p, err := fx.reg.PushPrepared(repo, "", layers)
		if err != nil {
			t.Fatal(err)
		}
		p.Platform = ocispec.Platform{OS: "linux", Architecture: arch}
		return p
	}
	amd := push("view/multi", "amd64", gnuTarOf(t, src), gnu.Bytes())
	arm := push("view/multi", "arm64", mkTar(t, dirEntry("etc/", 0o755), fileEntry("etc/os-release", osRelease("arm64"))))
	if _, err := fx.reg.PushIndex("view/multi", "v1", false, amd.Entry(), arm.Entry()); err != nil {
		t.Fatal(err)
	}
	mnt := mount(t, t.TempDir(), fx.reg.Host()+"/view/multi:v1", "--all-platforms")

	amdRoot := filepath.Join(mnt, "platforms/linux-amd64/rootfs")
	armRoot := filepath.Join(mnt, "platforms/linux-arm64/rootfs")
	if got, err := os.ReadFile(filepath.Join(armRoot, "etc/os-release")); err != nil || string(got) != osRelease("arm64") {
		t.Errorf("arm64 rootfs/etc/os-release: %q, %v", got, err)
	}
	for _, p := range []string{filepath.Join(armRoot, "data"), filepath.Join(amdRoot, "etc/os-release")} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %v, want it absent: each platform shows its own files", p, err)
		}
	}
	for name, want := range map[string]string{paxName: "pax\n", gnuName: "gnu\n"} {
		if got, err := os.ReadFile(filepath.Join(amdRoot, name)); err != nil || string(got) != want {
			t.Errorf("%d-byte name %s: %q, %v", len(name), name, got, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(amdRoot, "data/huge.img")); err != nil || fi.Size() != hugeSize {
		t.Errorf("stat data/huge.img: %v, %v; want %d bytes", fi, err, int64(hugeSize))
	}
	f, err := os.Open(filepath.Join(amdRoot, "data/sparse.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || fi.Size() != 1<<20 {
		t.Errorf("stat data/sparse.img: %v, %v; want 1 MiB", fi, err)
	}
	got := make([]byte, 8<<10)
	if _, err := f.ReadAt(got, 508<<10); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, len(got))
	copy(want[4<<10:], sparseData)
	if !bytes.Equal(got, want) {
		t.Errorf("data/sparse.img at 508 KiB: the hole then the data, not %q", bytes.TrimRight(got, "\x00"))
	}
}
