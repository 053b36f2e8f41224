package sociinterop

// The end-to-end tests of issue #19 against the imgfs binary: a mount
// reads a SOCI index (a v1 referrer, or a v2 index bound in a SOCI-enabled
// image) made by SOCI's own code, and imgfs index push publishes zTOCs
// that SOCI's own reader accepts. They are written against the contract:
//
//	imgfs mount [--index=auto|none] [--verify lazy|strict] <ref> <dir>
//	imgfs index push [registry flags] [--min-layer-size N] [--span-size N] [--v2-tag TAG] <ref>
//
// --index=auto, the default, reads a v2 SOCI index bound in the image
// index, else a v1 referrer, before any pass over a gzip layer. index push
// pushes a v1 referrer, or with --v2-tag a SOCI-enabled image under TAG,
// and prints the SOCI index manifest's digest on stdout's last line.
//
// A binary without the features (imgfs mount --help without --index, or
// imgfs index push --help failing) fails the tests: it is not the binary
// these tests are for.

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/awslabs/soci-snapshotter/soci"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/layer"
	"github.com/imgfs/imgfs/internal/layer/ztoc"
	"github.com/imgfs/imgfs/internal/sociinterop/socitest"
	"github.com/imgfs/imgfs/internal/testfuse"
	"github.com/imgfs/imgfs/internal/testregistry"
)

// e2eSpanSize is the span size of the end-to-end tests' zTOCs: 1 MiB, so
// that the 8 MiB base layer has several spans while its zTOC, a 32 KiB
// window per span, stays a few hundred KiB.
const e2eSpanSize = 1 << 20

// needle is the small file the tests read: 4 KiB of text between two
// 4 MiB random files of the base layer, so that its span lies in the
// middle of the layer.
const needle = "usr/share/needle.txt"

// commandTimeout bounds every imgfs command: it must never hang.
const commandTimeout = 2 * time.Minute

var imgfsBuild struct {
	once      sync.Once
	dir, path string
	err       error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if imgfsBuild.dir != "" {
		os.RemoveAll(imgfsBuild.dir)
	}
	os.Exit(code)
}

// imgfsBinary returns $IMGFS_BIN, or the imgfs binary built once from the
// parent module (with its own go.mod, not this module's).
func imgfsBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("IMGFS_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	b := &imgfsBuild
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "sociinterop-imgfs-"); b.err != nil {
			return
		}
		b.path = filepath.Join(b.dir, "imgfs")
		cmd := exec.Command("go", "build", "-o", b.path, "github.com/imgfs/imgfs/cmd/imgfs")
		cmd.Dir = filepath.Join("..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build imgfs: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

type result struct {
	stdout, stderr string
	err            error
}

func runImgfs(t *testing.T, bin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("imgfs %v did not finish within %v\nstderr: %s", args, commandTimeout, stderr.String())
	}
	return result{stdout.String(), stderr.String(), err}
}

func mustImgfs(t *testing.T, bin string, args ...string) result {
	t.Helper()
	r := runImgfs(t, bin, args...)
	if r.err != nil {
		t.Fatalf("imgfs %v: %v\nstdout: %s\nstderr: %s", args, r.err, r.stdout, r.stderr)
	}
	return r
}

var indexFlag = regexp.MustCompile(`\s--index[\s=]`)

// requireMountIndex returns the imgfs binary, and fails the test if its
// mount has no --index.
func requireMountIndex(t *testing.T) string {
	t.Helper()
	testfuse.Require(t)
	bin := imgfsBinary(t)
	r := runImgfs(t, bin, "mount", "--help")
	if r.err != nil {
		t.Fatalf("imgfs mount --help: %v\n%s", r.err, r.stderr)
	}
	if !indexFlag.MatchString(r.stdout + r.stderr) {
		t.Fatalf("%s: imgfs mount has no --index: build bin/imgfs from this tree (make build)", bin)
	}
	return bin
}

// requireIndexPush is requireMountIndex, and fails the test if imgfs has
// no index push.
func requireIndexPush(t *testing.T) string {
	t.Helper()
	bin := requireMountIndex(t)
	if r := runImgfs(t, bin, "index", "push", "--help"); r.err != nil {
		t.Fatalf("%s: imgfs index push --help: %v: build bin/imgfs from this tree (make build)", bin, r.err)
	}
	return bin
}

// baseTar is the base layer's tar: 8 MiB of random bytes in two files
// with the needle between them, and a few small files.
func baseTar(t *testing.T) []byte {
	t.Helper()
	random := func(seed int64) []byte {
		b, _ := io.ReadAll(testregistry.RandomBytes(seed, 4<<20))
		return b
	}
	files := []struct {
		name string
		data []byte
	}{
		{"etc/hostname", []byte("sociinterop\n")},
		{"usr/share/big1.bin", random(71)},
		{needle, needleContent()},
		{"usr/share/big2.bin", random(72)},
		{"usr/share/after.txt", []byte("after the big files\n")},
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []string{"etc/", "usr/", "usr/share/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: socitest.FixtureTime}); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: socitest.FixtureTime}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func needleContent() []byte {
	s := "the needle: read through a SOCI index\n"
	return []byte(s + strings.Repeat("n", 4096-len(s)-1) + "\n")
}

// e2eImage is the image the end-to-end tests mount: the base layer and,
// on top, the fixture layer of every kind of entry. It returns the
// prepared layers and their tars.
func e2eImage(t *testing.T) ([]testregistry.PreparedLayer, [][]byte) {
	t.Helper()
	raws := [][]byte{baseTar(t), socitest.FixtureTar(3)}
	var layers []testregistry.PreparedLayer
	for _, raw := range raws {
		l, err := testregistry.LayerBlob(raw, testregistry.BlobGzip)
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	return layers, raws
}

// readBound is the most a cold mount and a read of file, in layer i of
// img, may pull through the proxy: the image config; every zTOC and SOCI's
// 2-byte index config; and the cache chunks holding the one span that
// holds the file, by its own range, as SpanRange of layer i's zTOC gives
// it: the cache fetches a span through an exact range reader, not in
// whole chunks (cache/internal/blobfsm's exact.go). Manifests and
// referrers lists are not blobs and are not counted.
func readBound(t *testing.T, img socitest.Image, ztocs []ocispec.Descriptor, layerZtoc []byte, i int, file string) int64 {
	t.Helper()
	toc, err := ztoc.Parse(layerZtoc, ztoc.Limits{})
	if err != nil {
		t.Fatalf("the zTOC of layer %d: %v", i, err)
	}
	k := slices.IndexFunc(toc.Entries, func(e layer.Entry) bool { return e.Name == file })
	if k < 0 {
		t.Fatalf("the zTOC of layer %d has no %s", i, file)
	}
	e := toc.Entries[k]
	first, last := spanOf(toc, e.DataOffset), spanOf(toc, e.DataOffset+e.Size-1)
	if first != last {
		t.Fatalf("%s [%d,%d) crosses spans %d to %d: the fixture should keep it in one", file, e.DataOffset, e.DataOffset+e.Size, first, last)
	}
	start, end := toc.SpanRange(first)
	span := end - start
	bound := img.Config.Size + int64(len(socitest.ConfigBytes)) + span
	var ztocBytes int64
	for _, z := range ztocs {
		ztocBytes += z.Size
	}
	bound += ztocBytes
	t.Logf("%s is in span %d of %d, compressed [%d,%d) of layer %d's %d bytes; bound %d = config %d + SOCI config %d + zTOCs %d + the span %d",
		file, first, len(toc.Checkpoints), start, end, i, img.Layers[i].Size, bound, img.Config.Size, len(socitest.ConfigBytes), ztocBytes, span)
	if bound >= img.Layers[i].Size {
		t.Fatalf("the bound %d is not below the layer's %d bytes: the test would prove nothing", bound, img.Layers[i].Size)
	}
	return bound
}

// spanOf returns the span holding uncompressed offset out.
func spanOf(toc *ztoc.TOC, out int64) int {
	k := 0
	for i, c := range toc.Checkpoints {
		if c.Out <= out {
			k = i
		}
	}
	return k
}

// mountAndRead mounts ref with a fresh cache in the background, reads
// rootfs/<file> and returns its bytes; the mount is undone when the test
// ends. The mount's log is shown if the test fails.
func mountAndRead(t *testing.T, bin, ref, file string, args ...string) []byte {
	t.Helper()
	mnt, logFile := t.TempDir(), filepath.Join(t.TempDir(), "mount.log")
	all := append([]string{"mount", "--background", "--cache-dir", t.TempDir(), "--plain-http", "--log-file", logFile}, args...)
	r := mustImgfs(t, bin, append(all, ref, mnt)...)
	pid := backgroundPID(r.stdout)
	t.Cleanup(func() {
		runImgfs(t, bin, "unmount", mnt)
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("mount log:\n%s", b)
		}
	})
	got, err := os.ReadFile(filepath.Join(mnt, "rootfs", file))
	if err != nil {
		t.Fatalf("cat rootfs/%s: %v", file, err)
	}
	// Once the server has exited after the unmount, nothing it started
	// is still fetching: the proxy's count is final when the caller looks.
	if r := runImgfs(t, bin, "unmount", mnt); r.err != nil {
		t.Errorf("imgfs unmount: %v\n%s", r.err, r.stderr)
	}
	waitExit(t, pid)
	return got
}

// running reports whether process pid exists and is not a zombie (the
// server is no child of the test: whoever reaps it may be slow).
func running(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')') // the state follows the command's name
	return i >= 0 && i+2 < len(stat) && stat[i+2] != 'Z'
}

// backgroundPID reads the server's pid from mount --background's
// "mounted in the background (pid N, log ...)"; 0 if it is not there.
func backgroundPID(out string) int {
	_, rest, ok := strings.Cut(out, "(pid ")
	if !ok {
		return 0
	}
	num, _, _ := strings.Cut(rest, ",")
	pid, _ := strconv.Atoi(num)
	return pid
}

// waitExit waits for process pid to exit, for at most 30 s; pid 0 is
// not waited for.
func waitExit(t *testing.T, pid int) {
	t.Helper()
	if pid <= 0 {
		t.Log("mount --background printed no pid: not waiting for the server to exit")
		return
	}
	for deadline := time.Now().Add(30 * time.Second); running(pid); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("the mount's server (pid %d) still runs 30 s after imgfs unmount", pid)
			return
		}
	}
}

// checkPulled fails the test when the proxy counted more blob bytes than
// bound, listing what was fetched.
func checkPulled(t *testing.T, proxy *testregistry.Proxy, bound int64) {
	t.Helper()
	got := proxy.BlobBytes()
	t.Logf("the proxy counted %d blob bytes in %d blob requests; bound %d", got, proxy.BlobRequests(), bound)
	if got > bound {
		for _, r := range proxy.Requests() {
			t.Logf("  %s %s range %q: %d, %d bytes", r.Method, r.Path, r.Range, r.Status, r.Bytes)
		}
		t.Errorf("a cold mount and one small read pulled %d blob bytes, over the bound of %d: the zTOCs, the config and one span", got, bound)
	}
}

// ztocDescs returns the descriptors of idx's zTOCs.
func ztocDescs(idx *socitest.Index) []ocispec.Descriptor {
	var out []ocispec.Descriptor
	for _, z := range idx.Ztocs {
		out = append(out, z.Desc)
	}
	return out
}

// TestE2EMountSOCIV1Referrer mounts an image whose v1 SOCI index, made by
// SOCI's code, is a referrer: through the referrers API of
// go-containerregistry's registry, and through the tag fallback of
// docker-registry 2.8. A cold cat of a small file must give its bytes and
// pull no more than the zTOCs, the config and one span.
func TestE2EMountSOCIV1Referrer(t *testing.T) {
	bin := requireMountIndex(t)
	layers, _ := e2eImage(t)
	for _, rc := range registries(t) {
		t.Run(rc.name, func(t *testing.T) {
			c := socitest.NewClient(rc.host)
			img, err := c.PushImage("app", "v1", layers...)
			if err != nil {
				t.Fatal(err)
			}
			idx, err := c.PushV1(img, socitest.Options{SpanSize: e2eSpanSize}, rc.fallback)
			if err != nil {
				t.Fatal(err)
			}
			bound := readBound(t, img, ztocDescs(idx), idx.ZtocFor(img.Layers[0]).Bytes, 0, needle)
			proxy := testregistry.StartProxy(t, rc.host)
			got := mountAndRead(t, bin, proxy.Host()+"/app:v1", needle, "--index=auto")
			if !bytes.Equal(got, needleContent()) {
				t.Errorf("rootfs/%s: %d bytes, not the layer's", needle, len(got))
			}
			checkPulled(t, proxy, bound)
		})
	}
}

// TestE2EMountSOCIV2Image mounts a SOCI-enabled image (SOCI index v2 bound
// in the image index, as soci convert makes it) on docker-registry 2.8,
// with the same check as the v1 test.
func TestE2EMountSOCIV2Image(t *testing.T) {
	bin := requireMountIndex(t)
	layers, _ := e2eImage(t)
	reg := testregistry.Start(t)
	c := socitest.NewClient(reg.Host())
	img, err := c.PushImage("app", "v1", layers...)
	if err != nil {
		t.Fatal(err)
	}
	enabled, err := c.PushV2(img, v2Tag, socitest.Options{SpanSize: e2eSpanSize})
	if err != nil {
		t.Fatal(err)
	}
	bound := readBound(t, img, ztocDescs(enabled.SOCI), enabled.SOCI.ZtocFor(img.Layers[0]).Bytes, 0, needle)
	proxy := testregistry.StartProxy(t, reg.Host())
	got := mountAndRead(t, bin, proxy.Host()+"/app:"+v2Tag, needle)
	if !bytes.Equal(got, needleContent()) {
		t.Errorf("rootfs/%s: %d bytes, not the layer's", needle, len(got))
	}
	checkPulled(t, proxy, bound)
}

// indexPushCase is a registry imgfs index push publishes to, and how.
type indexPushCase struct {
	name string
	host string
	v2   bool // --v2-tag v2Tag: a SOCI-enabled image; else a v1 referrer
}

// v2Tag is the tag of the SOCI-enabled image index push makes.
const v2Tag = "v1-soci"

func indexPushCases(t *testing.T) []indexPushCase {
	return []indexPushCase{
		{"v1 referrer (go-containerregistry)", socitest.StartReferrersRegistry(t).Host(), false},
		{"v2 SOCI-enabled image (docker-registry 2.8)", testregistry.Start(t).Host(), true},
	}
}

// TestE2EIndexPush has imgfs index push index a plain gzip image: as a v1
// referrer on go-containerregistry's registry, and as a SOCI-enabled v2
// image (--v2-tag) on docker-registry 2.8. SOCI's own code must accept
// what it pushed (see checkPublished). Then a cold mount reads a small
// file pulling no more than the zTOCs, the config and one span.
func TestE2EIndexPush(t *testing.T) {
	bin := requireIndexPush(t)
	layers, raws := e2eImage(t)
	for _, tc := range indexPushCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			c := socitest.NewClient(tc.host)
			img, err := c.PushImage("plain", "v1", layers...)
			if err != nil {
				t.Fatal(err)
			}
			args := []string{"index", "push", "--plain-http", "--min-layer-size", "0", "--span-size", fmt.Sprint(e2eSpanSize)}
			if tc.v2 {
				args = append(args, "--v2-tag", v2Tag)
			}
			r := mustImgfs(t, bin, append(args, tc.host+"/plain:v1")...)
			lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
			indexDigest, err := digest.Parse(strings.TrimSpace(lines[len(lines)-1]))
			if err != nil {
				t.Fatalf("the last line of index push's stdout is not a digest: %v\n%s", err, r.stdout)
			}
			idx, ztocs := checkPublished(t, c, img, raws, indexDigest, tc.v2)

			ref := "/plain:v1"
			if tc.v2 {
				ref = "/plain:" + v2Tag
			}
			bound := readBound(t, img, idx.Blobs, ztocs[img.Layers[0].Digest], 0, needle)
			proxy := testregistry.StartProxy(t, tc.host)
			got := mountAndRead(t, bin, proxy.Host()+ref, needle)
			if !bytes.Equal(got, needleContent()) {
				t.Errorf("rootfs/%s: %d bytes, not the layer's", needle, len(got))
			}
			checkPulled(t, proxy, bound)
		})
	}
}

// TestIndexPushChecksAcceptSOCI runs TestE2EIndexPush's checks of what
// index push publishes on what SOCI's own code publishes, as socitest
// pushes it: they must accept it, or they would hold imgfs to something
// other than SOCI.
func TestIndexPushChecksAcceptSOCI(t *testing.T) {
	layers, raws := e2eImage(t)
	for _, tc := range indexPushCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			c := socitest.NewClient(tc.host)
			img, err := c.PushImage("plain", "v1", layers...)
			if err != nil {
				t.Fatal(err)
			}
			opts := socitest.Options{SpanSize: e2eSpanSize}
			var idx *socitest.Index
			if tc.v2 {
				var enabled *socitest.SOCIEnabled
				enabled, err = c.PushV2(img, v2Tag, opts)
				if enabled != nil {
					idx = enabled.SOCI
				}
			} else {
				idx, err = c.PushV1(img, opts, false)
			}
			if err != nil {
				t.Fatal(err)
			}
			checkPublished(t, c, img, raws, idx.Desc.Digest, tc.v2)
		})
	}
}

// checkPublished checks the SOCI index indexDigest published for img
// (see checkPushedIndex), fetches its zTOCs, and reads every file of every
// layer through them with SOCI's ztoc.Unmarshal and ExtractFile, which
// must give the tars' files, raws, byte for byte. It returns the index
// and the zTOCs by layer digest.
func checkPublished(t *testing.T, c *socitest.Client, img socitest.Image, raws [][]byte, indexDigest digest.Digest, v2 bool) (*soci.Index, map[digest.Digest][]byte) {
	t.Helper()
	idx := checkPushedIndex(t, c, img, indexDigest, v2)
	ztocs := map[digest.Digest][]byte{}
	for _, z := range idx.Blobs {
		b, err := c.Blob(img.Repo, z.Digest)
		if err != nil {
			t.Fatalf("zTOC %s: %v", z.Digest, err)
		}
		ztocs[digest.Digest(z.Annotations[soci.IndexAnnotationImageLayerDigest])] = b
	}
	for i, l := range img.Layers {
		zb, ok := ztocs[l.Digest]
		if !ok {
			t.Fatalf("the index has no zTOC of layer %d (%s), with --min-layer-size 0", i, l.Digest)
		}
		got := socitest.ReadBackZtoc(t, zb, img.Blobs[i])
		want := readTar(t, raws[i]).files()
		if len(got) != len(want) {
			t.Errorf("layer %d: SOCI read %d files through the zTOC, the tar has %d", i, len(got), len(want))
		}
		for name, w := range want {
			if g, ok := got[name]; !ok || !bytes.Equal(g, w) {
				t.Errorf("layer %d: %s read by SOCI through the zTOC: %d bytes (listed: %t), the tar has %d", i, name, len(g), ok, len(w))
			}
		}
	}
	return idx, ztocs
}

// checkPushedIndex fetches the SOCI index pushed for img and checks it with
// SOCI's own UnmarshalIndex and SOCI's conventions: a v1 index has img's
// manifest as its subject and is listed among its referrers (through the
// API or the tag fallback); a v2 index has none, and the SOCI-enabled
// image tagged v2Tag binds it as soci convert does.
func checkPushedIndex(t *testing.T, c *socitest.Client, img socitest.Image, indexDigest digest.Digest, v2 bool) *soci.Index {
	t.Helper()
	b, _, err := c.Manifest(img.Repo, indexDigest.String())
	if err != nil {
		t.Fatalf("the SOCI index %s: %v", indexDigest, err)
	}
	var idx soci.Index
	if err := soci.UnmarshalIndex(b, &idx); err != nil {
		t.Fatalf("soci.UnmarshalIndex refuses the index pushed: %v\n%s", err, b)
	}
	for i, z := range idx.Blobs {
		if z.MediaType != soci.SociLayerMediaType || z.Annotations[soci.IndexAnnotationImageLayerDigest] == "" ||
			z.Annotations[soci.IndexAnnotationImageLayerMediaType] == "" || z.Annotations[soci.IndexAnnotationSociSpanSize] != fmt.Sprint(e2eSpanSize) {
			t.Errorf("zTOC %d of the index: %+v; want SOCI's media type and layer digest, layer media type and span size annotations", i, z)
		}
	}
	if !v2 {
		if idx.ArtifactType != soci.SociIndexArtifactTypeV1 || idx.Subject == nil || idx.Subject.Digest != img.Manifest.Digest {
			t.Errorf("the index pushed: artifact type %s, subject %+v; want v1 with the image manifest %s as subject", idx.ArtifactType, idx.Subject, img.Manifest.Digest)
		}
		listed, err := c.ReferrersAPI(img.Repo, img.Manifest.Digest)
		if err != nil {
			t.Fatalf("the referrers of the image: %v", err)
		}
		if !slices.ContainsFunc(listed.Manifests, func(d ocispec.Descriptor) bool {
			return d.Digest == indexDigest && d.ArtifactType == soci.SociIndexArtifactTypeV1
		}) {
			t.Errorf("the registry's referrers of the image are %+v; want the SOCI index %s", listed.Manifests, indexDigest)
		}
		return &idx
	}
	if idx.ArtifactType != soci.SociIndexArtifactTypeV2 || idx.Subject != nil {
		t.Errorf("the index pushed: artifact type %s, subject %+v; want v2 without subject", idx.ArtifactType, idx.Subject)
	}
	ib, _, err := c.Manifest(img.Repo, v2Tag)
	if err != nil {
		t.Fatalf("the SOCI-enabled image v1-soci: %v", err)
	}
	var index ocispec.Index
	if err := json.Unmarshal(ib, &index); err != nil || index.MediaType != ocispec.MediaTypeImageIndex {
		t.Fatalf("v1-soci is not an OCI image index: %v\n%s", err, ib)
	}
	var image, sociEntry *ocispec.Descriptor
	for i, d := range index.Manifests {
		switch {
		case d.ArtifactType == soci.SociIndexArtifactTypeV2:
			sociEntry = &index.Manifests[i]
		case d.MediaType == ocispec.MediaTypeImageManifest:
			image = &index.Manifests[i]
		}
	}
	if image == nil || sociEntry == nil {
		t.Fatalf("v1-soci lists %+v; want the image manifest and the v2 SOCI index", index.Manifests)
	}
	if sociEntry.Digest != indexDigest || sociEntry.Platform == nil || image.Platform == nil ||
		sociEntry.Platform.OS != image.Platform.OS || sociEntry.Platform.Architecture != image.Platform.Architecture ||
		sociEntry.Annotations[soci.IndexAnnotationImageManifestDigest] != image.Digest.String() {
		t.Errorf("v1-soci's SOCI entry %+v; want %s, the image's platform, and %s=%s", sociEntry, indexDigest, soci.IndexAnnotationImageManifestDigest, image.Digest)
	}
	if image.Annotations[soci.ImageAnnotationSociIndexDigest] != indexDigest.String() {
		t.Errorf("v1-soci's image entry %+v; want %s=%s", image, soci.ImageAnnotationSociIndexDigest, indexDigest)
	}
	mb, _, err := c.Manifest(img.Repo, image.Digest.String())
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		t.Fatal(err)
	}
	if m.Annotations[soci.ImageAnnotationSociIndexDigest] != indexDigest.String() || m.Config.Digest != img.Config.Digest ||
		!slices.EqualFunc(m.Layers, img.Layers, func(a, b ocispec.Descriptor) bool { return a.Digest == b.Digest }) {
		t.Errorf("v1-soci's image manifest: annotations %v, config %s, %d layers; want the index digest annotation and img's config and layers", m.Annotations, m.Config.Digest, len(m.Layers))
	}
	return &idx
}
