package imagemount

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/fetch"
	"github.com/imgfs/imgfs/internal/layer/ztoc"
	"github.com/imgfs/imgfs/internal/soci"
	"github.com/imgfs/imgfs/internal/testfuse"
	"github.com/imgfs/imgfs/internal/testlog"
	"github.com/imgfs/imgfs/internal/testregistry"
)

// These tests mount gzip images whose zTOCs imgfs's own writer built (the
// interop module under internal/sociinterop does the same with zTOCs
// SOCI's code built), published as SOCI indexes in a real registry, and
// count at a proxy what a small-file read costs.

// sociSpan is the span size of the tests' zTOCs: small, so that a 3 MB
// layer has a dozen spans and one span is a small part of it.
const sociSpan = 256 << 10

// sociLayer is a gzip layer of incompressible files with two small text
// files, one at each end.
type sociLayer struct {
	blob  []byte
	desc  ocispec.Descriptor
	files map[string][]byte
}

func newSOCILayer(t *testing.T) sociLayer {
	t.Helper()
	files := map[string][]byte{
		"etc/os-release":     []byte("PRETTY_NAME=\"imgfs test\"\nID=imgfs\n"),
		"usr/share/last.txt": []byte(strings.Repeat("the last file\n", 20)),
		"usr/share/victim":   []byte("a file another file's entry is pointed at\n"),
	}
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	mtime := time.Unix(1700000000, 0)
	add := func(name string, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	for _, d := range []string{"etc/", "usr/", "usr/lib/", "usr/share/"} {
		tw.WriteHeader(&tar.Header{Name: d, Mode: 0o755, ModTime: mtime, Typeflag: tar.TypeDir, Format: tar.FormatPAX})
	}
	add("etc/os-release", files["etc/os-release"])
	add("usr/share/victim", files["usr/share/victim"])
	r := rand.New(rand.NewPCG(19, 19))
	for i := range 24 {
		b := make([]byte, 128<<10)
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		name := "usr/lib/blob" + string(rune('a'+i)) + ".bin"
		files[name] = b
		add(name, b)
	}
	add("usr/share/last.txt", files["usr/share/last.txt"])
	tw.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tarBuf.Bytes())
	zw.Close()
	blob := gz.Bytes()
	return sociLayer{blob: blob, files: files, desc: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(blob), Size: int64(len(blob))}}
}

// buildZtoc builds l's zTOC with imgfs's writer, and lets edit change it
// before it is encoded.
func (l sociLayer) buildZtoc(t *testing.T, edit func(*ztoc.TOC)) (*ztoc.TOC, []byte) {
	t.Helper()
	toc, err := ztoc.Build(bytes.NewReader(l.blob), ztoc.BuildOptions{SpanSize: sociSpan})
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(toc)
	}
	data, err := ztoc.Encode(toc)
	if err != nil {
		t.Fatal(err)
	}
	return toc, data
}

// spanBytes returns the blob bytes the cache fetches to read the spans
// holding the start of each named file's data: each span by its own
// range (an exact range reader, blobfsm's exact.go), counted once where
// spans overlap or repeat.
func spanBytes(t *testing.T, toc *ztoc.TOC, names ...string) int64 {
	t.Helper()
	var spans [][2]int64
	for _, name := range names {
		found := false
		for _, e := range toc.Entries {
			if e.Name != name {
				continue
			}
			for i := len(toc.Checkpoints) - 1; i >= 0 && !found; i-- {
				if toc.Checkpoints[i].Out <= e.DataOffset {
					start, end := toc.SpanRange(i)
					spans = append(spans, [2]int64{start, end})
					found = true
				}
			}
		}
		if !found {
			t.Fatalf("no entry %s in the zTOC", name)
		}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i][0] < spans[j][0] })
	var n, reached int64
	for _, sp := range spans {
		from := max(sp[0], reached)
		if sp[1] > from {
			n += sp[1] - from
		}
		reached = max(reached, sp[1])
	}
	return n
}

// sociImage is an image of one sociLayer, pushed, with the means to
// publish zTOCs for it.
type sociImage struct {
	reg    *testregistry.Registry
	repo   string
	layer  sociLayer
	pushed testregistry.Pushed
}

func pushSOCIImage(t *testing.T, reg *testregistry.Registry, repo string) sociImage {
	t.Helper()
	l := newSOCILayer(t)
	pushed, err := reg.PushImage(repo, "plain", testregistry.Image{Layers: []testregistry.Layer{testregistry.RawLayer(l.desc.MediaType, l.blob)}})
	if err != nil {
		t.Fatal(err)
	}
	return sociImage{reg: reg, repo: repo, layer: l, pushed: pushed}
}

// pushIndex pushes a zTOC and a SOCI index of version v listing it, and
// returns the index's descriptor.
func (img sociImage) pushIndex(t *testing.T, v soci.Version, ztocData []byte) ocispec.Descriptor {
	t.Helper()
	zd, err := img.reg.PushBlob(img.repo, bytes.NewReader(ztocData), int64(len(ztocData)))
	if err != nil {
		t.Fatal(err)
	}
	m, config, err := soci.Marshal(v, []soci.Built{{Layer: img.layer.desc, Ztoc: zd, SpanSize: sociSpan}}, &img.pushed.Manifest, "imgfs test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := img.reg.PushBlob(img.repo, bytes.NewReader(config), int64(len(config))); err != nil {
		t.Fatal(err)
	}
	desc, err := img.reg.PushManifest(img.repo, "", ocispec.MediaTypeImageManifest, m)
	if err != nil {
		t.Fatal(err)
	}
	desc.ArtifactType = v.ArtifactType()
	return desc
}

// publishV1 pushes a v1 index as a referrer of the image, through the
// distribution spec's tag fallback (docker-registry 2.8 has no referrers
// API).
func (img sociImage) publishV1(t *testing.T, ztocData []byte) ocispec.Descriptor {
	t.Helper()
	desc := img.pushIndex(t, soci.V1, ztocData)
	if _, err := img.reg.PushReferrersTag(img.repo, img.pushed.Manifest.Digest, desc); err != nil {
		t.Fatal(err)
	}
	return desc
}

// publishV2 pushes a SOCI-enabled image under tag: the image manifest
// annotated with its v2 index's digest, and an image index listing both.
func (img sociImage) publishV2(t *testing.T, tag string, ztocData []byte) ocispec.Descriptor {
	t.Helper()
	desc := img.pushIndex(t, soci.V2, ztocData)
	var m map[string]any
	if err := json.Unmarshal(img.pushed.ManifestBytes, &m); err != nil {
		t.Fatal(err)
	}
	m["annotations"] = map[string]string{soci.AnnotationIndexDigest: desc.Digest.String()}
	body, _ := json.Marshal(m)
	manifest, err := img.reg.PushManifest(img.repo, "", ocispec.MediaTypeImageManifest, body)
	if err != nil {
		t.Fatal(err)
	}
	_, err = img.reg.PushIndex(img.repo, tag, false,
		testregistry.IndexEntry{Manifest: manifest, Platform: img.pushed.Platform, Annotations: map[string]string{soci.AnnotationIndexDigest: desc.Digest.String()}},
		testregistry.IndexEntry{Manifest: desc, Platform: img.pushed.Platform, Annotations: map[string]string{soci.AnnotationImageManifestDigest: manifest.Digest.String()}})
	if err != nil {
		t.Fatal(err)
	}
	return desc
}

// sociMount is an image mounted in this process through a counting proxy.
type sociMount struct {
	*Mount
	dir   string
	proxy *testregistry.Proxy
	log   *testlog.Buffer
}

func mountSOCI(t *testing.T, reg *testregistry.Registry, repo, tag, cacheDir string, verify cache.VerifyMode, mode IndexMode) sociMount {
	t.Helper()
	testfuse.Require(t)
	proxy := testregistry.StartProxy(t, reg.Host())
	ref, err := fetch.ParseReference(proxy.Host() + "/" + repo + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	remote, err := fetch.NewRemote(ref, fetch.RemoteOptions{TransportOptions: fetch.TransportOptions{PlainHTTP: true}})
	if err != nil {
		t.Fatal(err)
	}
	store, err := cache.Open(cacheDir, cache.Options{Verify: verify})
	if err != nil {
		t.Fatal(err)
	}
	log := &testlog.Buffer{}
	dir := t.TempDir()
	m, err := Start(context.Background(), store, dir, Options{Ref: ref, Remote: remote, Index: mode, Logger: slog.New(slog.NewTextHandler(log, nil))})
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Unmount()
		m.Wait()
		m.Close()
		store.Close()
	})
	return sociMount{Mount: m, dir: dir, proxy: proxy, log: log}
}

func (m sociMount) view(t *testing.T, layer digest.Digest) LayerStats {
	t.Helper()
	for _, v := range m.Stats().Views {
		if v.Layer == layer {
			return v
		}
	}
	t.Fatalf("no view of layer %s in the stats", layer)
	return LayerStats{}
}

func TestSOCIIndexesServeASmallFileForOneSpan(t *testing.T) {
	reg := testregistry.Start(t)
	for _, v := range []soci.Version{soci.V1, soci.V2} {
		t.Run(v.String(), func(t *testing.T) {
			repo := "soci/" + v.String()
			img := pushSOCIImage(t, reg, repo)
			toc, data := img.layer.buildZtoc(t, nil)
			tag := "plain"
			if v == soci.V1 {
				img.publishV1(t, data)
			} else {
				tag = "soci"
				img.publishV2(t, tag, data)
			}
			m := mountSOCI(t, reg, repo, tag, t.TempDir(), cache.VerifyLazy, IndexAuto)
			m.proxy.ResetCounters()
			for _, name := range []string{"etc/os-release", "usr/share/last.txt"} {
				got, err := os.ReadFile(filepath.Join(m.dir, "rootfs", name))
				if err != nil || !bytes.Equal(got, img.layer.files[name]) {
					t.Fatalf("rootfs/%s: %q, %v; want %q", name, got, err, img.layer.files[name])
				}
			}
			// The zTOC, the image's config (fetched in the background),
			// and the span holding each file, each by its own range.
			bound := int64(len(data)) + img.pushed.Config.Size + spanBytes(t, toc, "etc/os-release", "usr/share/last.txt")
			t.Logf("pulled %d blob bytes, bound %d (zTOC %d, config %d), layer %d", m.proxy.BlobBytes(), bound, len(data), img.pushed.Config.Size, img.layer.desc.Size)
			if got := m.proxy.BlobBytes(); got > bound || got >= img.layer.desc.Size*3/4 {
				t.Errorf("two small files pulled %d blob bytes; want at most the zTOC, the config and two spans, %d (the layer is %d)", got, bound, img.layer.desc.Size)
			}
			if st := m.view(t, img.layer.desc.Digest); st.Source != "soci-"+v.String() || st.State != "ready" || st.IndexBytes != len(data) {
				t.Errorf("layer view: source %q, state %q, %d index bytes; want soci-%s, ready, %d", st.Source, st.State, st.IndexBytes, v, len(data))
			}
		})
	}
}

func TestSOCIUnboundIndexIgnoredWhenStrictOrOff(t *testing.T) {
	reg := testregistry.Start(t)
	img := pushSOCIImage(t, reg, "soci/off")
	_, data := img.layer.buildZtoc(t, nil)
	img.publishV1(t, data)
	for _, tc := range []struct {
		name   string
		verify cache.VerifyMode
		mode   IndexMode
	}{
		{"strict", cache.VerifyStrict, IndexAuto},
		{"index none", cache.VerifyLazy, IndexNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mountSOCI(t, reg, img.repo, "plain", t.TempDir(), tc.verify, tc.mode)
			if _, err := os.ReadFile(filepath.Join(m.dir, "rootfs", "etc/os-release")); err != nil {
				t.Fatal(err)
			}
			if st := m.view(t, img.layer.desc.Digest); st.Source != "pass" {
				t.Errorf("layer indexed from %q, want a pass", st.Source)
			}
			for _, r := range m.proxy.Requests() {
				if strings.Contains(r.Path, testregistry.ReferrersTag(img.pushed.Manifest.Digest)) || strings.Contains(r.Path, "/referrers/") {
					t.Errorf("%s looked for referrers: %s", tc.name, r.Path)
				}
			}
		})
	}
}

// TestSOCITamperedIndexes: a span digest that lies is caught at the read;
// an entry that lies about where its file starts is caught by the
// cross-check once the blob is verified, after which the layer's files
// answer EIO and the next mount uses the index derived from the verified
// bytes.
func TestSOCITamperedIndexes(t *testing.T) {
	reg := testregistry.Start(t)

	t.Run("span digest", func(t *testing.T) {
		img := pushSOCIImage(t, reg, "soci/span")
		_, data := img.layer.buildZtoc(t, func(toc *ztoc.TOC) {
			toc.SpanDigests[0] = digest.FromString("not the span")
		})
		img.publishV1(t, data)
		m := mountSOCI(t, reg, img.repo, "plain", t.TempDir(), cache.VerifyLazy, IndexAuto)
		_, err := os.ReadFile(filepath.Join(m.dir, "rootfs", "etc/os-release"))
		if !errors.Is(err, syscall.EIO) {
			t.Fatalf("read through a lying span digest: %v, want EIO", err)
		}
	})

	t.Run("entry offset", func(t *testing.T) {
		img := pushSOCIImage(t, reg, "soci/offset")
		// The two files trade places: os-release's entry now points at
		// the victim's bytes and the victim's at os-release's. Sizes and
		// offsets stay in stream order, so the zTOC parses.
		_, data := img.layer.buildZtoc(t, func(toc *ztoc.TOC) {
			var a, b int
			for i, e := range toc.Entries {
				switch e.Name {
				case "etc/os-release":
					a = i
				case "usr/share/victim":
					b = i
				}
			}
			toc.Entries[a].Name, toc.Entries[b].Name = toc.Entries[b].Name, toc.Entries[a].Name
			toc.Headers = nil // encode the edited entries, not the tar's headers
		})
		index := img.publishV1(t, data)
		cacheDir := t.TempDir()
		m := mountSOCI(t, reg, img.repo, "plain", cacheDir, cache.VerifyLazy, IndexAuto)
		path := filepath.Join(m.dir, "rootfs", "etc/os-release")
		// Before the blob is verified the lie is served: no digest covers
		// where a file starts. That is the unbound index's risk.
		if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, img.layer.files["usr/share/victim"]) {
			t.Fatalf("before the cross-check: %q, %v; want the victim's bytes", got, err)
		}
		// A whole read of the blob verifies it; the cross-check follows.
		if _, err := os.ReadFile(filepath.Join(m.dir, "blobs", "sha256", img.layer.desc.Digest.Encoded())); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for m.view(t, img.layer.desc.Digest).State != "refused" {
			if time.Now().After(deadline) {
				t.Fatalf("no refusal within 30 s of the blob's verification; stats %+v\nlog:\n%s", m.view(t, img.layer.desc.Digest), m.log)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if st := m.view(t, img.layer.desc.Digest); !strings.Contains(st.Error, index.Digest.String()) || !strings.Contains(st.Error, "name is") {
			t.Errorf("stats error %q, want the index digest and the field", st.Error)
		}
		if !strings.Contains(m.log.String(), index.Digest.String()) || !strings.Contains(m.log.String(), img.layer.desc.Digest.String()) {
			t.Errorf("log does not name the layer and the index:\n%s", m.log)
		}
		for _, name := range []string{"etc/os-release", "usr/share/last.txt"} {
			if _, err := os.ReadFile(filepath.Join(m.dir, "rootfs", name)); !errors.Is(err, syscall.EIO) {
				t.Errorf("rootfs/%s after the refusal: %v, want EIO", name, err)
			}
		}
		m.Unmount()
		m.Wait()
		m.Close()

		again := mountSOCI(t, reg, img.repo, "plain", cacheDir, cache.VerifyLazy, IndexAuto)
		if got, err := os.ReadFile(filepath.Join(again.dir, "rootfs", "etc/os-release")); err != nil || !bytes.Equal(got, img.layer.files["etc/os-release"]) {
			t.Fatalf("next mount: %q, %v; want the file's own bytes", got, err)
		}
		if st := again.view(t, img.layer.desc.Digest); st.Source != "stored" {
			t.Errorf("next mount indexed the layer from %q, want the stored index", st.Source)
		}
	})
}

func TestSOCIBadZtocFallsBackToAPass(t *testing.T) {
	reg := testregistry.Start(t)
	img := pushSOCIImage(t, reg, "soci/bad")
	index := img.publishV1(t, []byte("not a flatbuffer at all"))
	m := mountSOCI(t, reg, img.repo, "plain", t.TempDir(), cache.VerifyLazy, IndexAuto)
	got, err := os.ReadFile(filepath.Join(m.dir, "rootfs", "etc/os-release"))
	if err != nil || !bytes.Equal(got, img.layer.files["etc/os-release"]) {
		t.Fatalf("rootfs/etc/os-release: %q, %v", got, err)
	}
	if st := m.view(t, img.layer.desc.Digest); st.Source != "pass" {
		t.Errorf("layer indexed from %q, want a pass", st.Source)
	}
	var lines int
	for _, l := range strings.Split(m.log.String(), "\n") {
		if strings.Contains(l, "zTOC refused") && strings.Contains(l, index.Digest.String()) && strings.Contains(l, img.layer.desc.Digest.String()) {
			lines++
		}
	}
	if lines != 1 {
		t.Errorf("%d log lines name the refused zTOC with its layer and index, want 1:\n%s", lines, m.log)
	}
}

// TestSOCIBoundIndexUnderStrict: a v2 index is bound to the image, so
// --verify strict reads through it; a bad one is then EIO, not a pass.
func TestSOCIBoundIndexUnderStrict(t *testing.T) {
	reg := testregistry.Start(t)
	for _, tc := range []struct {
		name string
		bad  bool
	}{{"good", false}, {"bad", true}} {
		t.Run(tc.name, func(t *testing.T) {
			img := pushSOCIImage(t, reg, "soci/strict-"+tc.name)
			_, data := img.layer.buildZtoc(t, nil)
			if tc.bad {
				data = []byte("not a flatbuffer at all")
			}
			img.publishV2(t, "soci", data)
			m := mountSOCI(t, reg, img.repo, "soci", t.TempDir(), cache.VerifyStrict, IndexAuto)
			got, err := os.ReadFile(filepath.Join(m.dir, "rootfs", "etc/os-release"))
			st := m.view(t, img.layer.desc.Digest)
			if tc.bad {
				if !errors.Is(err, syscall.EIO) || st.State != "failed" {
					t.Fatalf("strict read through a bad bound zTOC: %v, state %q; want EIO and failed", err, st.State)
				}
				return
			}
			if err != nil || !bytes.Equal(got, img.layer.files["etc/os-release"]) || st.Source != "soci-v2" {
				t.Fatalf("strict read through a bound zTOC: %q, %v, source %q", got, err, st.Source)
			}
		})
	}
}
