package fusefs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/imgfs/imgfs/internal/testfuse"
	"github.com/imgfs/imgfs/internal/testlog"
)

// errShortRead makes a fake reader return half of what is asked, without
// an error.
var errShortRead = errors.New("short read")

// fakeBlobs is an in-memory Blobs. Blobs marked complete also exist as
// files, which is what passthrough serves.
type fakeBlobs struct {
	data map[digest.Digest][]byte
	fail map[digest.Digest]error

	mu       sync.Mutex // guards complete, and data once mounted
	complete map[digest.Digest]string

	opens, closes, completeCalls atomic.Int64
	maxRead                      atomic.Int64

	// lend: readers lend their bytes (LendingReader), counted here.
	lend              bool
	lends, givenBacks atomic.Int64
}

func (f *fakeBlobs) Open(d ocispec.Descriptor) (BlobReader, error) {
	f.mu.Lock()
	b, ok := f.data[d.Digest]
	f.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("blob %s: not found", d.Digest)
	}
	f.opens.Add(1)
	r := &fakeReader{f: f, data: b, err: f.fail[d.Digest]}
	if f.lend {
		return lendingFake{r}, nil
	}
	return r, nil
}

func (f *fakeBlobs) CompletePath(d ocispec.Descriptor) (string, bool) {
	f.completeCalls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.complete[d.Digest]
	return p, ok
}

// replace swaps the bytes that later opens of d read, as a refetch after a
// digest mismatch would.
func (f *fakeBlobs) replace(d digest.Digest, b []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.data[d] = b
}

func (f *fakeBlobs) setComplete(d digest.Digest, path string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if path == "" {
		delete(f.complete, d)
	} else {
		f.complete[d] = path
	}
}

type fakeReader struct {
	f    *fakeBlobs
	data []byte
	err  error
}

func (r *fakeReader) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	for {
		m := r.f.maxRead.Load()
		if int64(len(p)) <= m || r.f.maxRead.CompareAndSwap(m, int64(len(p))) {
			break
		}
	}
	if r.err == errShortRead {
		return len(p) / 2, nil // breaks the BlobReader contract
	}
	if r.err != nil {
		return 0, r.err
	}
	if off >= int64(len(r.data)) {
		return 0, io.EOF
	}
	n := copy(p, r.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (r *fakeReader) Close() error {
	r.f.closes.Add(1)
	return nil
}

// testImage is a two-platform image index with layers of every kind the
// tests need.
type testImage struct {
	img   Image
	blobs *fakeBlobs
	// Named blobs.
	index, amd64, arm64, cfgAMD, cfgARM ocispec.Descriptor
	onDisk, lazy, small, bad, late      ocispec.Descriptor
	short                               ocispec.Descriptor // in Blobs only
	dir                                 string             // where complete blobs live
}

var testCreated = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

func newTestImage(t testing.TB) *testImage {
	ti := &testImage{dir: t.TempDir(), blobs: &fakeBlobs{
		data:     map[digest.Digest][]byte{},
		fail:     map[digest.Digest]error{},
		complete: map[digest.Digest]string{},
	}}
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	add := func(mediaType string, b []byte, onDisk bool) ocispec.Descriptor {
		d := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
		ti.blobs.data[d.Digest] = b
		ti.img.Blobs = append(ti.img.Blobs, d)
		if onDisk {
			p := filepath.Join(ti.dir, d.Digest.Encoded())
			if err := os.WriteFile(p, b, 0o444); err != nil {
				t.Fatal(err)
			}
			ti.blobs.complete[d.Digest] = p
		}
		return d
	}
	addJSON := func(mediaType string, v any) ocispec.Descriptor {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return add(mediaType, b, true)
	}

	ti.onDisk = add(ocispec.MediaTypeImageLayerGzip, random(3<<20+123), true)
	ti.lazy = add(ocispec.MediaTypeImageLayerGzip, random(5<<20+7), false)
	ti.small = add(ocispec.MediaTypeImageLayer, random(1000), false)
	ti.bad = add(ocispec.MediaTypeImageLayerZstd, random(100<<10), false)
	ti.blobs.fail[ti.bad.Digest] = errors.New("injected failure")
	ti.late = add("application/octet-stream", random(200<<10), false)
	ti.short = add("application/octet-stream", random(300<<10), false)
	ti.blobs.fail[ti.short.Digest] = errShortRead
	// Write late's file now; it is marked complete only during the test.
	if err := os.WriteFile(filepath.Join(ti.dir, ti.late.Digest.Encoded()), ti.blobs.data[ti.late.Digest], 0o444); err != nil {
		t.Fatal(err)
	}

	amd := ocispec.Platform{OS: "linux", Architecture: "amd64"}
	arm := ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	ti.cfgAMD = addJSON(ocispec.MediaTypeImageConfig, ocispec.Image{Platform: amd})
	ti.cfgARM = addJSON(ocispec.MediaTypeImageConfig, ocispec.Image{Platform: arm})
	manifest := func(cfg ocispec.Descriptor, layers ...ocispec.Descriptor) ocispec.Descriptor {
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: layers}
		m.SchemaVersion = 2
		return addJSON(ocispec.MediaTypeImageManifest, m)
	}
	ti.amd64 = manifest(ti.cfgAMD, ti.onDisk, ti.lazy, ti.small)
	ti.arm64 = manifest(ti.cfgARM, ti.onDisk, ti.bad, ti.late)
	withPlatform := func(d ocispec.Descriptor, p ocispec.Platform) ocispec.Descriptor {
		d.Platform = &p
		return d
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{
		withPlatform(ti.amd64, amd), withPlatform(ti.arm64, arm)}}
	idx.SchemaVersion = 2
	ti.index = addJSON(ocispec.MediaTypeImageIndex, idx)

	ti.img.Name = "latest"
	ti.img.Root = ti.index
	ti.img.IndexComplete = true
	ti.img.Created = testCreated
	ti.img.Platforms = []PlatformImage{
		{Platform: amd, Manifest: ti.amd64, Config: ti.cfgAMD, Layers: []ocispec.Descriptor{ti.onDisk, ti.lazy, ti.small}},
		{Platform: arm, Manifest: ti.arm64, Config: ti.cfgARM, Layers: []ocispec.Descriptor{ti.onDisk, ti.bad, ti.late}},
	}
	return ti
}

// requireFUSE skips the test where FUSE cannot be mounted, except on CI,
// where that is a broken runner and must fail.
// run runs a command in a child process, so that the kernel, not this
// process, talks to the mount.
func run(t *testing.T, name string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, stderr, err := run(t, name, args...)
	if err != nil {
		t.Fatalf("%s %q: %v: %s", name, args, err, stderr)
	}
	return out
}

// holdOpen keeps path open in a child process until the returned func is
// called.
func holdOpen(t *testing.T, path string) (release func()) {
	t.Helper()
	cmd := exec.Command("sh", "-c", `exec 3< "$0" && echo open && read _`, path)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr testlog.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "open\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("holding %s open: %q %s", path, line, stderr.String())
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			in.Close()
			cmd.Wait()
		})
	}
	t.Cleanup(release)
	return release
}

func sha256Of(t *testing.T, path string) (string, error) {
	t.Helper()
	out, stderr, err := run(t, "sha256sum", path)
	if err != nil {
		return "", fmt.Errorf("%v: %s", err, stderr)
	}
	sum, _, _ := strings.Cut(out, " ")
	return "sha256:" + sum, nil
}

func readStats(t *testing.T, mnt string) (fsStats, map[string]any) {
	t.Helper()
	var doc struct {
		Fusefs fsStats        `json:"fusefs"`
		Cache  map[string]any `json:"cache"`
	}
	out := mustRun(t, "cat", filepath.Join(mnt, statsPath))
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("stats.json does not parse: %v\n%s", err, out)
	}
	return doc.Fusefs, doc.Cache
}

// passthroughExpected says whether the kernel should take passthrough
// handles: Linux 6.9 or later, as root.
func passthroughExpected() bool {
	var u unix.Utsname
	if os.Geteuid() != 0 || unix.Uname(&u) != nil {
		return false
	}
	var major, minor int
	fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &major, &minor)
	return major > 6 || major == 6 && minor >= 9
}

func mountTest(t *testing.T, ti *testImage, logs io.Writer) (*Server, string) {
	t.Helper()
	mnt := t.TempDir()
	srv, err := Mount(mnt, ti.img, ti.blobs, Options{
		FsName:      "test.example/img:latest",
		Logger:      slog.New(slog.NewTextHandler(logs, nil)),
		Passthrough: true,
		ExtraStats:  func() any { return map[string]int{"hits": 7} },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, ok, _ := findMount(mnt); ok {
			unix.Unmount(mnt, unix.MNT_DETACH)
		}
	})
	return srv, mnt
}

func TestMountedImage(t *testing.T) {
	testfuse.Require(t)
	ti := newTestImage(t)
	var logs testlog.Buffer
	srv, mnt := mountTest(t, ti, &logs)
	defer func() {
		if t.Failed() {
			t.Logf("filesystem log:\n%s", logs.String())
		}
	}()
	hexOf := func(d ocispec.Descriptor) string { return d.Digest.Encoded() }
	blob := func(d ocispec.Descriptor) string { return filepath.Join(mnt, "blobs/sha256", hexOf(d)) }
	short := func(d ocispec.Descriptor) string { return hexOf(d)[:12] }

	t.Run("mount table", func(t *testing.T) {
		m, ok, err := findMount(mnt)
		if err != nil || !ok {
			t.Fatalf("not in mountinfo: %v", err)
		}
		if m.fsType != "fuse.imgfs" || m.source != "test.example/img:latest" {
			t.Errorf("mountinfo: %+v", m)
		}
		var st unix.Statfs_t
		if err := unix.Statfs(mnt, &st); err != nil {
			t.Fatal(err)
		}
		if st.Flags&unix.ST_RDONLY == 0 {
			t.Errorf("mount is not read-only: flags %#x", st.Flags)
		}
		if os.Geteuid() == 0 {
			var s unix.Stat_t
			if err := unix.Stat(mnt, &s); err != nil {
				t.Fatal(err)
			}
			knob := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(s.Dev), unix.Minor(s.Dev))
			if b, err := os.ReadFile(knob); err != nil || strings.TrimSpace(string(b)) != "4096" {
				t.Errorf("%s = %q %v, want 4096", knob, b, err)
			}
		}
	})

	t.Run("listing", func(t *testing.T) {
		want := []string{
			"d .imgfs",
			"f .imgfs/stats.json",
			"d blobs",
			"d blobs/sha256",
			"f index.json",
			"l config.json",
			"l index-manifest.json",
			"d layers",
			"l layers/0-" + short(ti.onDisk) + ".tar.gz",
			"l layers/1-" + short(ti.lazy) + ".tar.gz",
			"l layers/2-" + short(ti.small) + ".tar",
			"l manifest.json",
			"f oci-layout",
			"d platforms",
			"d platforms/linux-amd64",
			"l platforms/linux-amd64/config.json",
			"d platforms/linux-amd64/layers",
			"l platforms/linux-amd64/layers/0-" + short(ti.onDisk) + ".tar.gz",
			"l platforms/linux-amd64/layers/1-" + short(ti.lazy) + ".tar.gz",
			"l platforms/linux-amd64/layers/2-" + short(ti.small) + ".tar",
			"l platforms/linux-amd64/manifest.json",
			"d platforms/linux-arm64-v8",
			"l platforms/linux-arm64-v8/config.json",
			"d platforms/linux-arm64-v8/layers",
			"l platforms/linux-arm64-v8/layers/0-" + short(ti.onDisk) + ".tar.gz",
			"l platforms/linux-arm64-v8/layers/1-" + short(ti.bad) + ".tar.zst",
			"l platforms/linux-arm64-v8/layers/2-" + short(ti.late) + ".blob",
			"l platforms/linux-arm64-v8/manifest.json",
		}
		for _, d := range ti.img.Blobs {
			want = append(want, "f blobs/sha256/"+hexOf(d))
		}
		out := mustRun(t, "find", mnt, "-mindepth", "1", "-printf", `%y %P\n`)
		got := strings.Split(strings.TrimSpace(out), "\n")
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("listing:\n got %q\nwant %q", got, want)
		}
		if !strings.Contains(mustRun(t, "ls", "-R", mnt), "index-manifest.json") {
			t.Error("ls -R misses index-manifest.json")
		}
	})

	t.Run("attributes", func(t *testing.T) {
		uid, gid := os.Getuid(), os.Getgid()
		check := func(path, want string) {
			t.Helper()
			got := strings.TrimSpace(mustRun(t, "stat", "-c", "%s %a %u %g %Y", path))
			if got != want {
				t.Errorf("stat %s = %q, want %q", path, got, want)
			}
		}
		mtime := testCreated.Unix()
		for _, d := range ti.img.Blobs {
			check(blob(d), fmt.Sprintf("%d 444 %d %d %d", d.Size, uid, gid, mtime))
		}
		check(filepath.Join(mnt, "oci-layout"), fmt.Sprintf("%d 444 %d %d %d", len(ociLayout), uid, gid, mtime))
		for _, d := range []string{"", "blobs", "platforms/linux-amd64/layers"} {
			got := strings.Fields(mustRun(t, "stat", "-c", "%a %u %Y", filepath.Join(mnt, d)))
			if want := []string{"555", strconv.Itoa(uid), strconv.FormatInt(mtime, 10)}; !slices.Equal(got, want) {
				t.Errorf("dir %q: %q, want %q", d, got, want)
			}
		}
		got := strings.TrimSpace(mustRun(t, "stat", "-c", "%F %a", filepath.Join(mnt, "manifest.json")))
		if got != "symbolic link 777" {
			t.Errorf("manifest.json: %q", got)
		}
		// Stat alone never reaches the cache.
		if n, c := ti.blobs.opens.Load(), ti.blobs.completeCalls.Load(); n != 0 || c != 0 {
			t.Errorf("stat and listing called Blobs: %d opens, %d CompletePath", n, c)
		}
	})

	t.Run("layout files", func(t *testing.T) {
		if got := mustRun(t, "cat", filepath.Join(mnt, "oci-layout")); got != `{"imageLayoutVersion":"1.0.0"}` {
			t.Errorf("oci-layout: %q", got)
		}
		var idx ocispec.Index
		if err := json.Unmarshal([]byte(mustRun(t, "cat", filepath.Join(mnt, "index.json"))), &idx); err != nil {
			t.Fatal(err)
		}
		names := map[string]digest.Digest{}
		for _, d := range idx.Manifests {
			names[d.Annotations[ocispec.AnnotationRefName]] = d.Digest
		}
		want := map[string]digest.Digest{
			"latest":                ti.amd64.Digest,
			"latest-linux-amd64":    ti.amd64.Digest,
			"latest-linux-arm64-v8": ti.arm64.Digest,
			"latest-index":          ti.index.Digest,
		}
		if fmt.Sprint(names) != fmt.Sprint(want) {
			t.Errorf("index.json names %v, want %v", names, want)
		}
	})

	t.Run("content", func(t *testing.T) {
		for _, d := range ti.img.Blobs {
			if d.Digest == ti.bad.Digest || d.Digest == ti.short.Digest {
				continue
			}
			got, err := sha256Of(t, blob(d))
			if err != nil {
				t.Errorf("%s: %v", d.Digest, err)
			} else if got != d.Digest.String() {
				t.Errorf("content of %s hashes to %s", d.Digest, got)
			}
		}
		// A second read is served from the page cache (FOPEN_KEEP_CACHE).
		before := srv.stats().Reads
		if _, err := sha256Of(t, blob(ti.lazy)); err != nil {
			t.Fatal(err)
		}
		if after := srv.stats().Reads; after != before {
			t.Errorf("re-read sent %d READs, want 0 (page cache)", after-before)
		}
		// A partial read at an offset gets exactly the bytes asked for.
		out := mustRun(t, "dd", "if="+blob(ti.lazy), "bs=4096", "skip=1000", "count=3", "status=none")
		if want := ti.blobs.data[ti.lazy.Digest][4096*1000 : 4096*1003]; out != string(want) {
			t.Errorf("dd at offset: got %d bytes, differing", len(out))
		}
		t.Logf("largest READ through Blobs: %d bytes", ti.blobs.maxRead.Load())
	})

	t.Run("symlinks", func(t *testing.T) {
		for link, d := range map[string]ocispec.Descriptor{
			"manifest.json":                          ti.amd64,
			"config.json":                            ti.cfgAMD,
			"index-manifest.json":                    ti.index,
			"layers/1-" + short(ti.lazy) + ".tar.gz": ti.lazy,
			"platforms/linux-arm64-v8/config.json":   ti.cfgARM,
			"platforms/linux-arm64-v8/layers/2-" + short(ti.late) + ".blob":  ti.late,
			"platforms/linux-amd64/layers/0-" + short(ti.onDisk) + ".tar.gz": ti.onDisk,
		} {
			p := filepath.Join(mnt, link)
			target := strings.TrimSpace(mustRun(t, "readlink", p))
			up := strings.Repeat("../", strings.Count(link, "/"))
			if want := up + "blobs/sha256/" + hexOf(d); target != want {
				t.Errorf("readlink %s = %q, want %q", link, target, want)
			}
			if got, err := sha256Of(t, p); err != nil || got != d.Digest.String() {
				t.Errorf("through %s: %s %v", link, got, err)
			}
		}
	})

	t.Run("read-only", func(t *testing.T) {
		for _, args := range [][]string{
			{"touch", filepath.Join(mnt, "new")},
			{"touch", filepath.Join(mnt, "oci-layout")},
			{"touch", blob(ti.small)},
			{"sh", "-c", `echo x > "$0"`, filepath.Join(mnt, "index.json")},
			{"sh", "-c", `echo x >> "$0"`, blob(ti.small)},
			{"mkdir", filepath.Join(mnt, "d")},
			{"rm", "-f", filepath.Join(mnt, "oci-layout")},
			{"rmdir", filepath.Join(mnt, "layers")},
			{"ln", "-s", "x", filepath.Join(mnt, "l")},
			{"mv", filepath.Join(mnt, "config.json"), filepath.Join(mnt, "c.json")},
			{"chmod", "777", filepath.Join(mnt, "oci-layout")},
		} {
			_, stderr, err := run(t, args[0], args[1:]...)
			if err == nil || !strings.Contains(stderr, "Read-only file system") {
				t.Errorf("%q: err %v, stderr %q; want Read-only file system", args, err, stderr)
			}
		}
	})

	t.Run("read error is EIO", func(t *testing.T) {
		start := time.Now()
		_, stderr, err := run(t, "cat", blob(ti.bad))
		if err == nil || !strings.Contains(stderr, "Input/output error") {
			t.Errorf("cat failing blob: err %v, stderr %q", err, stderr)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("EIO took %v", d)
		}
		if l := logs.String(); !strings.Contains(l, ti.bad.Digest.String()) || !strings.Contains(l, "injected failure") {
			t.Errorf("log does not name the digest and cause:\n%s", l)
		}
		// A reader that returns less than asked must give EIO, not a
		// short read, which the kernel would take as end of file.
		_, stderr, err = run(t, "cat", blob(ti.short))
		if err == nil || !strings.Contains(stderr, "Input/output error") {
			t.Errorf("cat short-reading blob: err %v, stderr %q", err, stderr)
		}
		for _, d := range []ocispec.Descriptor{ti.bad, ti.short} {
			got := strings.TrimSpace(mustRun(t, "stat", "-c", "%s", blob(d)))
			if got != strconv.FormatInt(d.Size, 10) {
				t.Errorf("size of %s after EIO: %s", d.Digest, got)
			}
		}
	})

	t.Run("passthrough", func(t *testing.T) {
		st, cache := readStats(t, mnt)
		if cache["hits"] != float64(7) {
			t.Errorf("stats cache = %v, want ExtraStats", cache)
		}
		if st.Opens == 0 || st.Reads == 0 || st.ReadBytes == 0 || st.ReadErrors == 0 {
			t.Errorf("stats: %+v", st)
		}
		if st.PlainOpens+st.PassthroughOpens != st.Opens {
			t.Errorf("opens do not add up: %+v", st)
		}
		t.Logf("stats: %+v", st)
		if !passthroughExpected() {
			t.Skip("passthrough needs root and Linux 6.9 or later")
		}
		if st.PassthroughOpens == 0 {
			t.Fatalf("no passthrough opens: %+v\n%s", st, logs.String())
		}
		if st.PassthroughFallbacks != 0 {
			t.Errorf("passthrough handles fell back to READs: %+v", st)
		}
	})

	t.Run("passthrough mode per inode", func(t *testing.T) {
		if !passthroughExpected() {
			t.Skip("passthrough needs root and Linux 6.9 or later")
		}
		late := blob(ti.late)
		// A plain handle is open when the blob becomes complete: new opens
		// must stay plain, or the kernel fails them with EIO.
		release := holdOpen(t, late)
		ti.blobs.setComplete(ti.late.Digest, filepath.Join(ti.dir, hexOf(ti.late)))
		before := srv.stats().PassthroughOpens
		if got, err := sha256Of(t, late); err != nil || got != ti.late.Digest.String() {
			t.Fatalf("open beside a plain handle: %s %v", got, err)
		}
		if n := srv.stats().PassthroughOpens - before; n != 0 {
			t.Errorf("%d passthrough opens beside a plain handle", n)
		}
		release()
		waitFor(t, "plain handles released", func() bool { return ti.blobs.closes.Load() == ti.blobs.opens.Load() })

		// Now a passthrough handle is open, and the cache loses the file:
		// new opens must stay passthrough.
		release = holdOpen(t, late)
		ti.blobs.setComplete(ti.late.Digest, "")
		before = srv.stats().PassthroughOpens
		if got, err := sha256Of(t, late); err != nil || got != ti.late.Digest.String() {
			t.Fatalf("open beside a passthrough handle: %s %v", got, err)
		}
		if n := srv.stats().PassthroughOpens - before; n != 1 {
			t.Errorf("%d passthrough opens beside a passthrough handle, want 1", n)
		}
		release()
	})

	t.Run("mountpoint in use", func(t *testing.T) {
		err := CheckMountpoint(mnt)
		if !errors.Is(err, errMounted) || !strings.Contains(err.Error(), "run imgfs unmount "+mnt) {
			t.Errorf("CheckMountpoint on a live mount: %v", err)
		}
	})

	// A busy mount is detached lazily and goes away with the last file.
	release := holdOpen(t, blob(ti.small))
	if err := srv.Unmount(); err != nil {
		t.Fatalf("Unmount: %v\n%s", err, logs.String())
	}
	if _, ok, _ := findMount(mnt); ok {
		t.Error("still in mountinfo after Unmount")
	}
	done := make(chan struct{})
	go func() { srv.Wait(); close(done) }()
	release()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return after the last file closed")
	}
	if err := CheckMountpoint(mnt); err != nil {
		t.Errorf("after unmount: %v", err)
	}
	if _, err := Unmount(mnt); !errors.Is(err, errNotMounted) || err.Error() != "not mounted: "+mnt {
		t.Errorf("Unmount of a plain directory: %v", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestStableInodes(t *testing.T) {
	testfuse.Require(t)
	ti := newTestImage(t)
	_, mnt1 := mountTest(t, ti, io.Discard)
	srv2, mnt2 := mountTest(t, ti, io.Discard)
	paths := []string{".", "oci-layout", "blobs/sha256/" + ti.lazy.Digest.Encoded(), "platforms/linux-arm64-v8/layers", "manifest.json"}
	inodes := func(mnt string) []string {
		var args []string
		for _, p := range paths {
			args = append(args, filepath.Join(mnt, p))
		}
		return strings.Fields(mustRun(t, "stat", append([]string{"-c", "%i"}, args...)...))
	}
	a, b := inodes(mnt1), inodes(mnt2)
	if !slices.Equal(a, b) {
		t.Errorf("inode numbers differ between mounts: %v %v", a, b)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(a)))) != len(a) {
		t.Errorf("inode numbers repeat: %v", a)
	}

	// Unmount, the package function, on a live idle mount.
	res, err := Unmount(mnt2)
	if err != nil || res != Unmounted {
		t.Fatalf("Unmount live: %v %v", res, err)
	}
	srv2.Wait()
}

// TestPassthroughDeclined makes the kernel refuse passthrough, by backing
// blobs with files on another FUSE mount (stacking too deep), and checks
// that passthrough handles then serve READs themselves.
func TestPassthroughDeclined(t *testing.T) {
	testfuse.Require(t)
	if !passthroughExpected() {
		t.Skip("passthrough needs root and Linux 6.9 or later")
	}
	// The same image twice: the fake is deterministic.
	_, lower := mountTest(t, newTestImage(t), io.Discard)
	ti := newTestImage(t)
	for d := range ti.blobs.complete {
		ti.blobs.complete[d] = filepath.Join(lower, blobPath(d))
	}
	var logs testlog.Buffer
	srv, mnt := mountTest(t, ti, &logs)
	p := filepath.Join(mnt, blobPath(ti.onDisk.Digest))
	for range 2 {
		if got, err := sha256Of(t, p); err != nil || got != ti.onDisk.Digest.String() {
			t.Fatalf("read: %s %v", got, err)
		}
	}
	st := srv.stats()
	if st.PassthroughOpens != 0 || st.PassthroughFallbacks == 0 || st.Reads == 0 {
		t.Errorf("stats: %+v", st)
	}
	if n := strings.Count(logs.String(), "passthrough declined"); n != 1 {
		t.Errorf("%d log lines about declined passthrough, want 1:\n%s", n, logs.String())
	}
}

func TestCheckMountpoint(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	full := filepath.Join(dir, "full")
	empty := filepath.Join(dir, "empty")
	for _, p := range []string{full, empty} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{file, filepath.Join(full, "x")} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	missing := filepath.Join(dir, "missing")
	for _, tt := range []struct {
		path string
		want error
		msg  string
	}{
		{missing, errMountpointMissing, "mountpoint " + missing + " does not exist: create it with mkdir -p " + missing},
		{file, errNotDirectory, "mountpoint " + file + " is not a directory"},
		{full, errNotEmpty, "mountpoint " + full + " is not empty: use an empty directory"},
		{empty, nil, ""},
	} {
		err := CheckMountpoint(tt.path)
		if !errors.Is(err, tt.want) || (err != nil && err.Error() != tt.msg) {
			t.Errorf("CheckMountpoint(%s) = %v, want %v %q", tt.path, err, tt.want, tt.msg)
		}
	}
	if _, err := Unmount(empty); !errors.Is(err, errNotMounted) {
		t.Errorf("Unmount of a directory: %v", err)
	}
	if _, err := Unmount("/"); !errors.Is(err, errNotImgfs) {
		t.Errorf("Unmount(/) = %v, want errNotImgfs", err)
	}
}

// TestStaleMount kills a mounting child process and checks that the
// leftover mount is reported stale and can be cleared.
func TestStaleMount(t *testing.T) {
	testfuse.Require(t)
	mnt := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperMount$")
	// The helper is killed, so its own t.TempDir cleanup never runs: give
	// it a TMPDIR inside this test's, which is removed.
	cmd.Env = append(os.Environ(), "IMGFS_HELPER_MOUNT="+mnt, "TMPDIR="+t.TempDir())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr testlog.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		unix.Unmount(mnt, unix.MNT_DETACH)
	})
	// Kill only once Mount has returned: a daemon killed while it sends
	// requests to its own mount cannot exit.
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "mounted" {
	}
	if _, ok, _ := findMount(mnt); !ok {
		t.Fatalf("helper did not mount: %s", stderr.String())
	}
	cmd.Process.Kill()
	cmd.Wait()

	err = CheckMountpoint(mnt)
	if !errors.Is(err, errStaleMount) || err.Error() != "mountpoint "+mnt+" is a stale imgfs mount: run imgfs unmount "+mnt {
		t.Errorf("CheckMountpoint on a stale mount: %v", err)
	}
	res, err := Unmount(mnt)
	if err != nil || res != DetachedStale {
		t.Fatalf("Unmount stale: %v %v", res, err)
	}
	if err := CheckMountpoint(mnt); err != nil {
		t.Errorf("after clearing the stale mount: %v", err)
	}
}

// TestHelperMount is the child process of TestStaleMount: it mounts and
// waits to be killed.
func TestHelperMount(t *testing.T) {
	mnt := os.Getenv("IMGFS_HELPER_MOUNT")
	if mnt == "" {
		t.Skip("helper process for TestStaleMount")
	}
	ti := newTestImage(t)
	srv, err := Mount(mnt, ti.img, ti.blobs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("mounted")
	srv.Wait()
}

// TestCloseSendsOneFlush: the first close of a file gets ENOSYS for its
// FLUSH, and the kernel then sends no more, so later closes do not wait on
// the daemon. Each close of a passthrough blob, a plain blob and a small
// file would otherwise be a FLUSH.
func TestCloseSendsOneFlush(t *testing.T) {
	testfuse.Require(t)
	ti := newTestImage(t)
	srv, mnt := mountTest(t, ti, io.Discard)
	for range 3 {
		for _, p := range []string{"oci-layout", blobPath(ti.onDisk.Digest), blobPath(ti.lazy.Digest)} {
			f, err := os.Open(filepath.Join(mnt, p))
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatalf("close %s: %v", p, err)
			}
		}
	}
	if st := srv.stats(); st.Flushes != 1 {
		t.Errorf("9 opens and closes sent %d FLUSHes, want 1 (answered ENOSYS, then none)", st.Flushes)
	}
}
