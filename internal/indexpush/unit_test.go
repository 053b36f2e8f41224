package indexpush

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/errdefs"
	"github.com/imgfs/imgfs/internal/oci"
	"github.com/imgfs/imgfs/internal/soci"
)

func TestSkipReason(t *testing.T) {
	d := digest.FromString("layer")
	layer := func(mt string, size int64, ann map[string]string) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: mt, Digest: d, Size: size, Annotations: ann}
	}
	toc := digest.FromString("toc").String()
	tests := []struct {
		name  string
		layer ocispec.Descriptor
		want  string // "" qualifies
	}{
		{"OCI gzip", layer(ocispec.MediaTypeImageLayerGzip, 20<<20, nil), ""},
		{"Docker gzip", layer(oci.DockerLayer, 10<<20, nil), ""},
		{"small", layer(ocispec.MediaTypeImageLayerGzip, 10<<20-1, nil), "10.0 MiB, under the minimum layer size 10.0 MiB"},
		{"zstd", layer(ocispec.MediaTypeImageLayerZstd, 20<<20, nil), "zstd: a zTOC indexes gzip only"},
		{"tar", layer(ocispec.MediaTypeImageLayer, 20<<20, nil), "uncompressed tar"},
		{"eStargz", layer(ocispec.MediaTypeImageLayerGzip, 20<<20, map[string]string{oci.AnnotationEStargzTOC: toc}), "estargz: has its own TOC"},
		{"zstd:chunked", layer(ocispec.MediaTypeImageLayerZstd, 20<<20, map[string]string{oci.AnnotationZstdChunkedManifest: toc}), "zstd:chunked: has its own TOC"},
		{"foreign", layer(oci.DockerForeignLayer, 20<<20, nil), "not a tar layer"},
		{"in-toto", layer("application/vnd.in-toto+json", 20<<20, nil), "not a tar layer"},
		{"bad TOC annotation", layer(ocispec.MediaTypeImageLayerGzip, 20<<20, map[string]string{oci.AnnotationEStargzTOC: "x"}), "annotation"},
	}
	for _, tc := range tests {
		s, skipped := skipReason(tc.layer, DefaultMinLayerSize)
		if skipped != (tc.want != "") || !strings.Contains(s.why, tc.want) {
			t.Errorf("%s: skipReason = %+v, %v; want %q", tc.name, s, skipped, tc.want)
		}
	}
}

func TestOptions(t *testing.T) {
	o, err := Options{}.withDefaults()
	if err != nil || o.MinLayerSize != DefaultMinLayerSize || o.SpanSize != DefaultSpanSize || o.BuildTool != DefaultBuildTool {
		t.Errorf("defaults = %+v, %v", o, err)
	}
	if o, _ := (Options{MinLayerSize: -1}).withDefaults(); o.MinLayerSize != 0 {
		t.Errorf("MinLayerSize -1 became %d, want 0", o.MinLayerSize)
	}
	for _, bad := range []Options{{SpanSize: MinSpanSize - 1}, {SpanSize: MaxSpanSize + 1}, {V2Tag: "a:b"}, {V2Tag: "-x"}} {
		if _, err := bad.withDefaults(); !errors.Is(err, ErrBadOption) {
			t.Errorf("%+v: %v, want ErrBadOption", bad, err)
		}
	}
}

// TestVerifier: only the digest's own bytes end in io.EOF.
func TestVerifier(t *testing.T) {
	data := []byte("the layer's bytes")
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(data), Size: int64(len(data))}
	read := func(src []byte) error {
		v := newVerifier(iotest.OneByteReader(bytes.NewReader(src)), io.NopCloser(nil), desc)
		got, err := io.ReadAll(v)
		if err == nil && !bytes.Equal(got, data) {
			t.Errorf("read %q clean, want %q", got, data)
		}
		if verr := v.verified(); (verr == nil) != (err == nil) {
			t.Errorf("verified() = %v after ReadAll's %v", verr, err)
		}
		return err
	}
	if err := read(data); err != nil {
		t.Errorf("good bytes: %v", err)
	}
	bad := bytes.Clone(data)
	bad[3] ^= 1
	if err := read(bad); !errors.Is(err, errdefs.ErrDigestMismatch) {
		t.Errorf("flipped byte: %v, want a digest mismatch", err)
	}
	if err := read(data[:5]); !errors.Is(err, errdefs.ErrSizeMismatch) {
		t.Errorf("short: %v, want a size mismatch", err)
	}
	if err := read(append(bytes.Clone(data), 'x')); !errors.Is(err, errdefs.ErrSizeMismatch) {
		t.Errorf("long: %v, want a size mismatch", err)
	}
}

// TestEnableIndex: converted manifests are replaced in place, their SOCI
// indexes appended, and an index the source already lists for the same
// platform replaced, once.
func TestEnableIndex(t *testing.T) {
	desc := func(s string, p *ocispec.Platform) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: oci.DockerManifest, Digest: digest.FromString(s), Size: int64(len(s)), Platform: p}
	}
	amd := &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	arm := &ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	oldIndex := desc("old soci index", amd)
	oldIndex.MediaType = ocispec.MediaTypeImageManifest
	oldIndex.Annotations = map[string]string{soci.AnnotationImageManifestDigest: "sha256:whatever"}
	src := []ocispec.Descriptor{desc("amd", amd), desc("arm", arm), oldIndex}
	root := ocispec.Descriptor{MediaType: oci.DockerManifestList, Digest: digest.FromString("root"), Size: 4}
	rootData := mustJSON(t, ocispec.Index{MediaType: oci.DockerManifestList, Manifests: src, Annotations: map[string]string{"a": "b"}})

	var conv []converted
	for _, s := range src[:2] {
		m, x := listing(desc("new "+s.Digest.String(), nil), map[string]string{soci.AnnotationIndexDigest: "sha256:x"}, desc("index "+s.Digest.String(), nil), *s.Platform)
		conv = append(conv, converted{source: s, manifest: m, index: x})
	}
	data, err := enableIndex(root, rootData, conv)
	if err != nil {
		t.Fatal(err)
	}
	var got ocispec.Index
	decode(t, data, &got)
	if got.MediaType != ocispec.MediaTypeImageIndex || got.SchemaVersion != 2 || got.Annotations["a"] != "b" {
		t.Errorf("index %s: want an OCI image index keeping its annotations", data)
	}
	want := []digest.Digest{conv[0].manifest.Digest, conv[1].manifest.Digest, conv[0].index.Digest, conv[1].index.Digest}
	if len(got.Manifests) != len(want) {
		t.Fatalf("index lists %d, want %d: %s", len(got.Manifests), len(want), data)
	}
	for i, w := range want {
		if got.Manifests[i].Digest != w {
			t.Errorf("entry %d is %s, want %s", i, got.Manifests[i].Digest, w)
		}
	}
	x := got.Manifests[2]
	if x.ArtifactType != soci.ArtifactTypeV2 || x.Platform.Architecture != "amd64" || x.Annotations[soci.AnnotationImageManifestDigest] != conv[0].manifest.Digest.String() {
		t.Errorf("SOCI index entry %+v", x)
	}

	// A manifest as root: an index of it and its SOCI index.
	m := desc("single", nil)
	mc, xc := listing(desc("new single", nil), nil, desc("index single", nil), *amd)
	data, err = enableIndex(m, nil, []converted{{source: m, manifest: mc, index: xc}})
	if err != nil {
		t.Fatal(err)
	}
	got = ocispec.Index{}
	decode(t, data, &got)
	if len(got.Manifests) != 2 || got.Manifests[0].Digest != mc.Digest || got.Manifests[0].Platform.Architecture != "amd64" || got.Manifests[1].Digest != xc.Digest {
		t.Errorf("index of a single manifest: %s", data)
	}
}

// TestEnableManifest: OCI media types and the index digest, the rest kept.
func TestEnableManifest(t *testing.T) {
	src := ocispec.Manifest{
		MediaType:   oci.DockerManifest,
		Config:      ocispec.Descriptor{MediaType: oci.DockerConfig, Digest: digest.FromString("c"), Size: 1},
		Layers:      []ocispec.Descriptor{{MediaType: oci.DockerLayer, Digest: digest.FromString("l"), Size: 1}},
		Annotations: map[string]string{"keep": "me"},
	}
	src.SchemaVersion = 2
	index := digest.FromString("index")
	data, ann, err := enableManifest(src, index)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	decode(t, data, &m)
	if m.MediaType != ocispec.MediaTypeImageManifest || m.Config.MediaType != ocispec.MediaTypeImageConfig || m.Config.Digest != src.Config.Digest ||
		m.Layers[0].MediaType != oci.DockerLayer || m.Annotations["keep"] != "me" || m.Annotations[soci.AnnotationIndexDigest] != index.String() || ann[soci.AnnotationIndexDigest] != index.String() {
		t.Errorf("enabled manifest %s", data)
	}
	if src.Annotations[soci.AnnotationIndexDigest] != "" {
		t.Errorf("the source manifest's annotations were changed")
	}
	if d, ok, err := soci.BoundIndex(data); !ok || err != nil || d != index {
		t.Errorf("BoundIndex = %s, %v, %v", d, ok, err)
	}
}
