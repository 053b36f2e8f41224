package indexpush

import (
	"archive/tar"
	"bytes"
	"errors"
	"math/rand"
	"net/http"
	"strconv"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/errdefs"
	"github.com/imgfs/imgfs/internal/soci"
	"github.com/imgfs/imgfs/internal/testregistry"
)

// mixedImage has one layer of each kind Push meets: a gzip layer big
// enough for a zTOC (several spans, files across span boundaries), a gzip
// layer too small, a zstd layer and an uncompressed one.
func mixedImage() (testregistry.Image, []testregistry.File) {
	big := []testregistry.File{
		testregistry.RandomFile("usr/lib/big.bin", 1, 300<<10),
		testregistry.BytesFile("etc/os-release", []byte("ID=test\n")),
		testregistry.RandomFile("usr/share/mid.bin", 2, 90<<10),
		testregistry.BytesFile("etc/empty", nil),
	}
	return testregistry.Image{Layers: []testregistry.Layer{
		testregistry.TarLayer(testregistry.Gzip, big...),
		testregistry.TarLayer(testregistry.Gzip, testregistry.RandomFile("small.bin", 3, 16<<10)),
		testregistry.TarLayer(testregistry.Zstd, testregistry.RandomFile("zstd.bin", 4, 300<<10)),
		testregistry.TarLayer(testregistry.Uncompressed, testregistry.RandomFile("plain.bin", 5, 300<<10)),
	}}, big
}

// TestPushV1TagFallback: on distribution 2.8, which has no referrers API,
// Push lists its v1 index in the referrers tag, where fetch's Referrers
// finds it; the index parses as SOCI's, names the image as subject, and
// lists a zTOC of the big gzip layer only, through which every file of
// the layer reads back as written. A second push, with other spans, adds
// an index beside the first; its layer comes from the cache.
func TestPushV1TagFallback(t *testing.T) {
	reg := testregistry.Start(t)
	img, files := mixedImage()
	p, err := reg.PushImage("app", "v1", img)
	if err != nil {
		t.Fatal(err)
	}
	store := openStore(t)
	res, reports, err := push(t, store, reg.Host(), "app", "v1", Options{BuildTool: "imgfs test"})
	if err != nil {
		t.Fatal(err)
	}

	wantSkip := []string{"", "under the minimum layer size", "zstd: a zTOC indexes gzip only", "uncompressed tar"}
	if len(reports) != len(wantSkip) {
		t.Fatalf("%d layer reports, want %d: %+v", len(reports), len(wantSkip), reports)
	}
	for i, r := range reports {
		if r.Layer.Digest != p.Layers[i].Digest || r.Manifest != p.Manifest.Digest || r.Platform.Architecture != "amd64" {
			t.Errorf("report %d is of layer %s of %s (%s), want layer %s of %s", i, r.Layer.Digest, r.Manifest, r.Platform.Architecture, p.Layers[i].Digest, p.Manifest.Digest)
		}
		if wantSkip[i] == "" && (r.Skipped != "" || r.Ztoc.Size == 0 || r.Spans < 4 || r.Cached) {
			t.Errorf("layer %d: %+v, want a zTOC of several spans built from the registry's bytes", i, r)
		}
		if wantSkip[i] != "" && !strings.Contains(r.Skipped, wantSkip[i]) {
			t.Errorf("layer %d skipped %q, want it to say %q", i, r.Skipped, wantSkip[i])
		}
	}

	if len(res.Indexes) != 1 || res.Tag != "" {
		t.Fatalf("Result %+v, want one v1 index and no tag", res)
	}
	pub := res.Indexes[0]
	if pub.Version != soci.V1 || pub.Manifest.Digest != p.Manifest.Digest || pub.ReferrersTag != testregistry.ReferrersTag(p.Manifest.Digest) || pub.Ztocs != 1 {
		t.Errorf("published %+v, want a v1 index of %s listed in the referrers tag", pub, p.Manifest.Digest)
	}

	remote := newRemote(t, reg.Host(), "app", "v1")
	refs, err := remote.Referrers(testContext(t), p.Manifest, soci.ArtifactTypeV1)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 1 || refs[0].Digest != pub.Index.Digest || refs[0].Annotations[soci.AnnotationBuildTool] != "imgfs test" {
		t.Fatalf("Referrers = %+v, want the index %s with its build tool", refs, pub.Index.Digest)
	}
	x := readIndex(t, reg, "app", pub.Index.Digest)
	if x.Version != soci.V1 || x.Subject == nil || x.Subject.Digest != p.Manifest.Digest || x.Subject.MediaType != p.Manifest.MediaType || x.Subject.Size != p.Manifest.Size {
		t.Errorf("index subject %+v, version %v; want v1 naming %+v", x.Subject, x.Version, p.Manifest)
	}
	if x.BuildTool != "imgfs test" || len(x.Ztocs) != 1 {
		t.Fatalf("index: build tool %q, %d zTOCs; want ours and 1", x.BuildTool, len(x.Ztocs))
	}
	_, raw, _ := reg.GetManifest("app", pub.Index.Digest.String())
	var m ocispec.Manifest
	decode(t, raw, &m)
	if m.Config.MediaType != soci.ArtifactTypeV1 || m.Config.Size != 2 || m.Config.Digest.String() != "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a" {
		t.Errorf("index config %+v, want SOCI's: the v1 type on the empty JSON object", m.Config)
	}
	if got := m.Layers[0].Annotations[soci.AnnotationSpanSize]; got != strconv.Itoa(testSpan) {
		t.Errorf("span size annotation %q, want %d", got, testSpan)
	}
	checkZtocReadsLayer(t, remote, x.Ztocs[0], p.Layers[0], files)

	// Again with other spans: another index for the same subject, and
	// both are listed.
	res2, reports2, err := push(t, store, reg.Host(), "app", "v1", Options{SpanSize: 2 * testSpan})
	if err != nil {
		t.Fatal(err)
	}
	if !reports2[0].Cached {
		t.Errorf("second push read the layer from the registry, not from the cache it filled")
	}
	if res2.Indexes[0].Index.Digest == pub.Index.Digest {
		t.Fatalf("second push made the same index")
	}
	refs, err = remote.Referrers(testContext(t), p.Manifest, soci.ArtifactTypeV1)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 2 || refs[0].Digest != pub.Index.Digest || refs[1].Digest != res2.Indexes[0].Index.Digest {
		t.Errorf("Referrers after a second push = %+v, want the first index then the second", refs)
	}
}

// TestPushV2Tag converts the amd64 image of a Docker multi-platform image
// into a SOCI-enabled one under a new tag: its manifest rewritten with OCI
// media types and annotated with its index, listed beside that index; the
// arm64 image and the attestation are listed as they were.
func TestPushV2Tag(t *testing.T) {
	reg := testregistry.Start(t)
	mp, err := reg.PushMultiPlatform("multi", "v1", true)
	if err != nil {
		t.Fatal(err)
	}
	amd, arm := mp.Images[0], mp.Images[1]
	store := openStore(t)
	res, _, err := push(t, store, reg.Host(), "multi", "v1", Options{
		V2Tag: "v1-soci", Platforms: []ocispec.Platform{testregistry.PlatformAMD64}, MinLayerSize: 128 << 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Tag != "v1-soci" || len(res.Indexes) != 1 || res.Indexes[0].Version != soci.V2 || res.Indexes[0].Source.Digest != amd.Manifest.Digest {
		t.Fatalf("Result %+v, want one v2 index of the amd64 manifest under v1-soci", res)
	}
	desc, data, err := reg.GetManifest("multi", "v1-soci")
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != res.Image.Digest || desc.MediaType != ocispec.MediaTypeImageIndex {
		t.Fatalf("v1-soci is %+v, want the OCI image index %s", desc, res.Image.Digest)
	}
	var index ocispec.Index
	decode(t, data, &index)
	if len(index.Manifests) != 4 {
		t.Fatalf("image index lists %d manifests, want amd64, arm64, the attestation and the SOCI index:\n%s", len(index.Manifests), data)
	}
	converted, armEntry, att := index.Manifests[0], index.Manifests[1], index.Manifests[2]
	if armEntry.Digest != arm.Manifest.Digest || armEntry.MediaType != arm.Manifest.MediaType || att.Digest != mp.Attestation.Manifest.Digest {
		t.Errorf("unselected entries changed: arm64 %+v, attestation %+v", armEntry, att)
	}
	if converted.Digest == amd.Manifest.Digest || converted.MediaType != ocispec.MediaTypeImageManifest ||
		converted.Platform == nil || converted.Platform.Architecture != "amd64" {
		t.Fatalf("amd64 entry %+v, want a new OCI manifest for linux/amd64", converted)
	}
	_, mdata, err := reg.GetManifest("multi", converted.Digest.String())
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	decode(t, mdata, &m)
	if m.MediaType != ocispec.MediaTypeImageManifest || m.Config.MediaType != ocispec.MediaTypeImageConfig || m.Config.Digest != amd.Config.Digest || len(m.Layers) != len(amd.Layers) {
		t.Errorf("SOCI-enabled manifest %s, want the amd64 manifest with OCI media types", mdata)
	}
	d, ok, err := soci.BoundIndex(mdata)
	if err != nil || !ok || d != res.Indexes[0].Index.Digest || converted.Annotations[soci.AnnotationIndexDigest] != d.String() {
		t.Fatalf("BoundIndex = %s, %v, %v; descriptor annotations %v; want %s on both", d, ok, err, converted.Annotations, res.Indexes[0].Index.Digest)
	}
	listed, ok := soci.Listed(index.Manifests, d)
	if !ok {
		t.Fatalf("soci.Listed does not find %s in %s", d, data)
	}
	xEntry := index.Manifests[3]
	if xEntry.Digest != listed.Digest || xEntry.ArtifactType != soci.ArtifactTypeV2 || xEntry.Platform == nil || xEntry.Platform.Architecture != "amd64" ||
		xEntry.Annotations[soci.AnnotationImageManifestDigest] != converted.Digest.String() {
		t.Errorf("SOCI index entry %+v, want v2, linux/amd64, naming %s", xEntry, converted.Digest)
	}
	x := readIndex(t, reg, "multi", d)
	if x.Version != soci.V2 || x.Subject != nil || len(x.Ztocs) != 1 || x.Ztocs[0].Layer != amd.Layers[1].Digest {
		t.Errorf("index %+v, want v2, no subject, one zTOC of the 256 KiB layer", x)
	}
	checkZtocReadsLayer(t, newRemote(t, reg.Host(), "multi", "v1"), x.Ztocs[0], amd.Layers[1], testregistry.MultiPlatformImages(true)[0].Layers[1].Files)

	// The SOCI-enabled image converted again replaces its index.
	res2, _, err := push(t, store, reg.Host(), "multi", "v1-soci", Options{
		V2Tag: "v1-soci2", Platforms: []ocispec.Platform{testregistry.PlatformAMD64}, MinLayerSize: 128 << 10, SpanSize: 2 * testSpan,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, data2, _ := reg.GetManifest("multi", "v1-soci2")
	var index2 ocispec.Index
	decode(t, data2, &index2)
	if len(index2.Manifests) != 4 || index2.Manifests[3].Digest != res2.Indexes[0].Index.Digest {
		t.Errorf("converted twice: %s, want 4 entries, the new SOCI index last", data2)
	}
}

// TestPushNothingToIndex: when no layer qualifies, Push says why, counting
// the layers, and pushes nothing.
func TestPushNothingToIndex(t *testing.T) {
	reg := testregistry.Start(t)
	p, err := reg.PushImage("small", "v1", testregistry.Image{Layers: []testregistry.Layer{
		testregistry.TarLayer(testregistry.Gzip, testregistry.RandomFile("a", 1, 1<<10)),
		testregistry.TarLayer(testregistry.Gzip, testregistry.RandomFile("b", 2, 1<<10)),
		testregistry.TarLayer(testregistry.Zstd, testregistry.RandomFile("c", 3, 300<<10)),
	}})
	if err != nil {
		t.Fatal(err)
	}
	_, reports, err := push(t, openStore(t), reg.Host(), "small", "v1", Options{})
	if !errors.Is(err, ErrNoLayer) || len(reports) != 0 {
		t.Fatalf("Push = %v (%d reports), want ErrNoLayer before any layer", err, len(reports))
	}
	for _, want := range []string{"2 under the minimum layer size 256.0 KiB", "1 zstd", "small:v1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if _, _, err := reg.GetManifest("small", testregistry.ReferrersTag(p.Manifest.Digest)); err == nil {
		t.Errorf("a referrers tag was pushed")
	}
}

// TestPushBadLayerPushesNothing: a layer whose bytes do not match its
// digest fails the push before anything is pushed.
func TestPushBadLayerPushesNothing(t *testing.T) {
	reg := testregistry.Start(t)
	img, _ := mixedImage()
	p, err := reg.PushImage("app", "v1", img)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testregistry.StartProxy(t, reg.Host())
	proxy.SetFault(testregistry.Corrupt.On(p.Layers[0].Digest.String()))
	store, err := cacheWithTimeout(t)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = push(t, store, proxy.Host(), "app", "v1", Options{})
	if !errors.Is(err, errdefs.ErrDigestMismatch) {
		t.Fatalf("Push through a corrupting proxy = %v, want a digest mismatch", err)
	}
	for _, r := range proxy.Requests() {
		if r.Method == http.MethodPut {
			t.Errorf("%s %s sent, but the layer failed", r.Method, r.Path)
		}
	}
}

// TestPushUnrepresentableLayer: a layer whose tar holds what a zTOC cannot
// describe (a name escaping the root) gets none, with a line saying why;
// the other layer is indexed. Alone, it leaves nothing to index.
func TestPushUnrepresentableLayer(t *testing.T) {
	layerOf := func(names ...string) testregistry.PreparedLayer {
		var raw bytes.Buffer
		tw := tar.NewWriter(&raw)
		for i, name := range names {
			data := make([]byte, 300<<10)
			rand.New(rand.NewSource(int64(i))).Read(data)
			if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
				t.Fatal(err)
			}
			tw.Write(data)
		}
		tw.Close()
		l, err := testregistry.LayerBlob(raw.Bytes(), testregistry.BlobGzip)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	bad, good := layerOf("ok.bin", "../escape.bin"), layerOf("fine.bin")
	reg := testregistry.Start(t)
	if _, err := reg.PushPrepared("odd", "v1", []testregistry.PreparedLayer{bad, good}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.PushPrepared("odd", "bad", []testregistry.PreparedLayer{bad}); err != nil {
		t.Fatal(err)
	}
	store := openStore(t)
	res, reports, err := push(t, store, reg.Host(), "odd", "v1", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != 2 || !strings.Contains(reports[0].Skipped, "cannot describe") || !strings.Contains(reports[0].Skipped, "escape") || reports[1].Skipped != "" {
		t.Errorf("reports %+v, want the first layer skipped for its name, the second indexed", reports)
	}
	if len(res.Indexes) != 1 || res.Indexes[0].Ztocs != 1 {
		t.Errorf("result %+v, want one index of one zTOC", res)
	}
	if _, _, err := push(t, store, reg.Host(), "odd", "bad", Options{}); !errors.Is(err, ErrNoLayer) || !strings.Contains(err.Error(), "could be described") {
		t.Errorf("Push of the bad layer alone = %v, want ErrNoLayer", err)
	}
}
