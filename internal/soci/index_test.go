package soci

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var (
	layerA = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString("layer a"), Size: 20 << 20}
	layerB = ocispec.Descriptor{MediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip", Digest: digest.FromString("layer b"), Size: 30 << 20}
	image  = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("image"), Size: 900}
)

func built() []Built {
	return []Built{
		{Layer: layerA, Ztoc: ocispec.Descriptor{Digest: digest.FromString("ztoc a"), Size: 1234}, SpanSize: 4 << 20},
		{Layer: layerB, Ztoc: ocispec.Descriptor{Digest: digest.FromString("ztoc b"), Size: 99}, SpanSize: 1 << 20},
	}
}

func TestMarshalParseRoundTrip(t *testing.T) {
	for _, v := range []Version{V1, V2} {
		t.Run(v.String(), func(t *testing.T) {
			m, config, err := Marshal(v, built(), &image, "imgfs test")
			if err != nil {
				t.Fatal(err)
			}
			if string(config) != "{}" {
				t.Errorf("config %q, want {}", config)
			}
			x, err := Parse(m)
			if err != nil {
				t.Fatal(err)
			}
			if x.Version != v || x.BuildTool != "imgfs test" || len(x.Ztocs) != 2 {
				t.Fatalf("parsed %+v", x)
			}
			if v == V1 && (x.Subject == nil || x.Subject.Digest != image.Digest) {
				t.Errorf("v1 subject %v, want %s", x.Subject, image.Digest)
			}
			if v == V2 && x.Subject != nil {
				t.Errorf("v2 subject %v, want none", x.Subject)
			}
			z, ok := x.For(layerB.Digest)
			if !ok || z.Desc.Digest != digest.FromString("ztoc b") || z.Desc.Size != 99 || z.LayerMediaType != layerB.MediaType {
				t.Errorf("zTOC of layer b: %+v %v", z, ok)
			}
			if _, ok := x.For(digest.FromString("other")); ok {
				t.Error("zTOC found for a layer the index does not list")
			}
			// SOCI's shape, field for field.
			var raw map[string]any
			_ = json.Unmarshal(m, &raw)
			cfg := raw["config"].(map[string]any)
			if cfg["mediaType"] != v.ArtifactType() || cfg["digest"] != "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a" || cfg["size"] != 2.0 {
				t.Errorf("config descriptor %v", cfg)
			}
			l0 := raw["layers"].([]any)[0].(map[string]any)["annotations"].(map[string]any)
			if l0[AnnotationSpanSize] != "4194304" || l0[AnnotationLayerDigest] != layerA.Digest.String() {
				t.Errorf("zTOC annotations %v", l0)
			}
		})
	}
}

func TestMarshalRefuses(t *testing.T) {
	if _, _, err := Marshal(V1, built(), nil, "x"); err == nil {
		t.Error("v1 without a subject: no error")
	}
	if _, _, err := Marshal(V2, nil, nil, "x"); err == nil {
		t.Error("no zTOC: no error")
	}
}

// manifest is a SOCI index as JSON, edited by each case.
func manifest(edit func(m map[string]any)) []byte {
	m, _, _ := Marshal(V1, built(), &image, "t")
	var raw map[string]any
	_ = json.Unmarshal(m, &raw)
	edit(raw)
	out, _ := json.Marshal(raw)
	return out
}

func ztocAt(m map[string]any, i int) map[string]any {
	return m["layers"].([]any)[i].(map[string]any)
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		data       []byte
	}{
		{"not JSON", "SOCI index: unexpected end of JSON input", []byte("{")},
		{"docker manifest", "not an OCI image manifest", manifest(func(m map[string]any) {
			m["mediaType"] = "application/vnd.docker.distribution.manifest.v2+json"
		})},
		{"an image, not an index", "config media type \"application/vnd.oci.image.config.v1+json\" is not a SOCI index's", manifest(func(m map[string]any) {
			m["config"].(map[string]any)["mediaType"] = ocispec.MediaTypeImageConfig
		})},
		{"artifactType disagrees", "disagrees", manifest(func(m map[string]any) { m["artifactType"] = ArtifactTypeV2 })},
		{"bad zTOC digest", "zTOC 0", manifest(func(m map[string]any) { ztocAt(m, 0)["digest"] = "sha256:../../etc" })},
		{"zTOC too large", "size 268435457", manifest(func(m map[string]any) { ztocAt(m, 1)["size"] = MaxZtocSize + 1 })},
		{"empty zTOC", "size 0", manifest(func(m map[string]any) { ztocAt(m, 1)["size"] = 0 })},
		{"no layer digest", "com.amazon.soci.image-layer-digest", manifest(func(m map[string]any) {
			delete(ztocAt(m, 0)["annotations"].(map[string]any), AnnotationLayerDigest)
		})},
		{"two zTOCs for a layer", "two zTOCs for layer", manifest(func(m map[string]any) {
			ztocAt(m, 1)["annotations"].(map[string]any)[AnnotationLayerDigest] = layerA.Digest.String()
		})},
		{"bad subject", "subject", manifest(func(m map[string]any) { m["subject"].(map[string]any)["digest"] = "md5:00" })},
		{"too many blobs", "over the limit of 1024", manifest(func(m map[string]any) {
			var many []any
			for range MaxZtocs + 1 {
				many = append(many, map[string]any{"mediaType": PrefetchMediaType, "digest": digest.FromString("p").String(), "size": 1})
			}
			m["layers"] = many
		})},
		{"too large", "over the 4194304-byte limit", []byte(`{"pad":"` + strings.Repeat("x", 4<<20) + `"}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestParseSkipsPrefetchLists(t *testing.T) {
	x, err := Parse(manifest(func(m map[string]any) {
		ztocAt(m, 1)["mediaType"] = PrefetchMediaType
		delete(ztocAt(m, 1), "annotations")
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(x.Ztocs) != 1 || x.Ztocs[0].Layer != layerA.Digest {
		t.Fatalf("zTOCs %+v, want layer a's only", x.Ztocs)
	}
}

func TestBoundIndex(t *testing.T) {
	idx := digest.FromString("index")
	for _, tc := range []struct {
		name     string
		manifest string
		want     digest.Digest
		ok       bool
		err      string
	}{
		{"plain image", `{"schemaVersion":2}`, "", false, ""},
		{"SOCI-enabled", `{"annotations":{"com.amazon.soci.index-digest":"` + idx.String() + `"}}`, idx, true, ""},
		{"bad digest", `{"annotations":{"com.amazon.soci.index-digest":"sha256:xyz"}}`, "", false, "com.amazon.soci.index-digest"},
		{"not JSON", `[`, "", false, "image manifest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := BoundIndex([]byte(tc.manifest))
			if got != tc.want || ok != tc.ok || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("BoundIndex = %s, %v, %v; want %s, %v, error containing %q", got, ok, err, tc.want, tc.ok, tc.err)
			}
		})
	}
	listed := []ocispec.Descriptor{
		image,
		{MediaType: ocispec.MediaTypeImageIndex, Digest: idx, Size: 10}, // wrong type
		{MediaType: ocispec.MediaTypeImageManifest, Digest: idx, Size: 700, ArtifactType: ArtifactTypeV2},
	}
	d, ok := Listed(listed, idx)
	if !ok || d.Size != 700 {
		t.Fatalf("Listed = %+v, %v; want the manifest of 700 bytes", d, ok)
	}
	if _, ok := Listed(listed[:2], idx); ok {
		t.Fatal("Listed found an index listed only as an image index")
	}
}
