package fusefs

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/oci"
)

func desc(mediaType, hexByte string, size int64) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mediaType, Digest: digest.Digest("sha256:" + strings.Repeat(hexByte, 64)), Size: size}
}

func TestLayoutIndex(t *testing.T) {
	idx := desc(ocispec.MediaTypeImageIndex, "a", 500)
	list := desc(oci.DockerManifestList, "b", 400)
	m1 := desc(ocispec.MediaTypeImageManifest, "1", 101)
	m2 := desc(ocispec.MediaTypeImageManifest, "2", 102)
	m3 := desc(ocispec.MediaTypeImageManifest, "3", 103)
	amd64 := ocispec.Platform{OS: "linux", Architecture: "amd64"}
	arm64 := ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	win := ocispec.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.17763.1"}
	win2 := ocispec.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.20348.1"}
	cfg := desc(ocispec.MediaTypeImageConfig, "c", 10)

	type ref struct {
		name     string
		digest   digest.Digest
		size     int64
		platform string // platformDir, or "" for none
	}
	tests := []struct {
		name string
		img  Image
		want []ref
	}{{
		name: "single manifest",
		img:  Image{Name: "latest", Root: m1, Platforms: []PlatformImage{{Platform: amd64, Manifest: m1, Config: cfg}}},
		want: []ref{{"latest", m1.Digest, 101, "linux-amd64"}},
	}, {
		name: "single manifest, unknown platform",
		img:  Image{Name: "v1", Root: m1, Platforms: []PlatformImage{{Manifest: m1, Config: cfg}}},
		want: []ref{{"v1", m1.Digest, 101, ""}},
	}, {
		name: "index, complete",
		img: Image{Name: "latest", Root: idx, IndexComplete: true, Platforms: []PlatformImage{
			{Platform: arm64, Manifest: m2, Config: cfg}, {Platform: amd64, Manifest: m1, Config: cfg}}},
		want: []ref{
			{"latest", m2.Digest, 102, "linux-arm64-v8"},
			{"latest-linux-arm64-v8", m2.Digest, 102, "linux-arm64-v8"},
			{"latest-linux-amd64", m1.Digest, 101, "linux-amd64"},
			{"latest-index", idx.Digest, 500, ""},
		},
	}, {
		name: "index, incomplete: no -index name",
		img: Image{Name: "latest", Root: idx, Platforms: []PlatformImage{
			{Platform: amd64, Manifest: m1, Config: cfg}}},
		want: []ref{
			{"latest", m1.Digest, 101, "linux-amd64"},
			{"latest-linux-amd64", m1.Digest, 101, "linux-amd64"},
		},
	}, {
		name: "docker manifest list, same os-arch twice",
		img: Image{Name: "sha256-0123456789ab", Root: list, IndexComplete: true, Platforms: []PlatformImage{
			{Platform: win, Manifest: m1, Config: cfg}, {Platform: win2, Manifest: m2, Config: cfg}, {Platform: amd64, Manifest: m3, Config: cfg}}},
		want: []ref{
			{"sha256-0123456789ab", m1.Digest, 101, "windows-amd64"},
			{"sha256-0123456789ab-windows-amd64", m1.Digest, 101, "windows-amd64"},
			{"sha256-0123456789ab-windows-amd64-2", m2.Digest, 102, "windows-amd64"},
			{"sha256-0123456789ab-linux-amd64", m3.Digest, 103, "linux-amd64"},
			{"sha256-0123456789ab-index", list.Digest, 400, ""},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := layoutIndex(tt.img)
			if err != nil {
				t.Fatal(err)
			}
			var got ocispec.Index
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("index.json does not parse: %v\n%s", err, b)
			}
			if got.SchemaVersion != 2 || got.MediaType != ocispec.MediaTypeImageIndex {
				t.Errorf("schemaVersion %d mediaType %q", got.SchemaVersion, got.MediaType)
			}
			var refs []ref
			seen := map[string]bool{}
			for _, d := range got.Manifests {
				name := d.Annotations[ocispec.AnnotationRefName]
				if seen[name] {
					t.Errorf("name %q used twice", name)
				}
				seen[name] = true
				if d.MediaType == "" {
					t.Errorf("%s: no mediaType", name)
				}
				p := ""
				if d.Platform != nil {
					p = platformDir(*d.Platform)
				}
				refs = append(refs, ref{name, d.Digest, d.Size, p})
			}
			if !reflect.DeepEqual(refs, tt.want) {
				t.Errorf("refs:\n got %v\nwant %v", refs, tt.want)
			}
			again, _ := layoutIndex(tt.img)
			if string(again) != string(b) {
				t.Errorf("not deterministic:\n%s\n%s", b, again)
			}
		})
	}
}

func TestLayoutIndexInvalid(t *testing.T) {
	m := desc(ocispec.MediaTypeImageManifest, "1", 1)
	cfg := desc(ocispec.MediaTypeImageConfig, "c", 10)
	bad := m
	bad.Digest = "sha256:../../etc"
	for name, img := range map[string]Image{
		"no name":       {Root: m, Platforms: []PlatformImage{{Manifest: m, Config: cfg}}},
		"no platforms":  {Name: "x", Root: m},
		"no root":       {Name: "x", Platforms: []PlatformImage{{Manifest: m, Config: cfg}}},
		"no config":     {Name: "x", Root: m, Platforms: []PlatformImage{{Manifest: m}}},
		"path in blobs": {Name: "x", Root: m, Platforms: []PlatformImage{{Manifest: m, Config: cfg}}, Blobs: []ocispec.Descriptor{bad}},
	} {
		if _, err := layoutIndex(img); !errors.Is(err, errInvalidImage) {
			t.Errorf("%s: got %v, want errInvalidImage", name, err)
		}
	}
}

func TestPlatformDir(t *testing.T) {
	for _, tt := range []struct {
		p    ocispec.Platform
		want string
	}{
		{ocispec.Platform{OS: "linux", Architecture: "amd64"}, "linux-amd64"},
		{ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, "linux-arm64-v8"},
		{ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, "linux-arm-v7"},
		{ocispec.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0"}, "windows-amd64"},
		{ocispec.Platform{}, "unknown-unknown"},
		{ocispec.Platform{OS: "linux", Architecture: "x/y-z"}, "linux-x_y_z"},
	} {
		if got := platformDir(tt.p); got != tt.want {
			t.Errorf("platformDir(%+v) = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestLayerNames(t *testing.T) {
	gz := desc(ocispec.MediaTypeImageLayerGzip, "c", 1)
	for _, tt := range []struct {
		n     int
		first string
		last  string
	}{
		{1, "0-cccccccccccc.tar.gz", "0-cccccccccccc.tar.gz"},
		{10, "0-cccccccccccc.tar.gz", "9-cccccccccccc.tar.gz"},
		{11, "00-cccccccccccc.tar.gz", "10-cccccccccccc.tar.gz"},
		{101, "000-cccccccccccc.tar.gz", "100-cccccccccccc.tar.gz"},
	} {
		layers := make([]ocispec.Descriptor, tt.n)
		for i := range layers {
			layers[i] = gz
		}
		names := layerNames(layers)
		if names[0] != tt.first || names[len(names)-1] != tt.last {
			t.Errorf("%d layers: %q .. %q, want %q .. %q", tt.n, names[0], names[len(names)-1], tt.first, tt.last)
		}
	}
	if got := layerNames(nil); len(got) != 0 {
		t.Errorf("no layers: %q", got)
	}
}

func TestParseMountInfo(t *testing.T) {
	line := `36 35 0:52 / /tmp/my\040mnt ro,nosuid,nodev,relatime shared:1 - fuse.imgfs docker.io/library/alpine:3 ro,user_id=0,group_id=0`
	m, ok := parseMountInfo(line)
	want := mountInfo{dev: "0:52", mountPoint: "/tmp/my mnt", fsType: "fuse.imgfs", source: "docker.io/library/alpine:3"}
	if !ok || m != want {
		t.Errorf("got %+v %v, want %+v", m, ok, want)
	}
	if _, ok := parseMountInfo("garbage"); ok {
		t.Error("garbage parsed")
	}
	if got := unescapeOctal(`a\134b\011`); got != "a\\b\t" {
		t.Errorf("unescape: %q", got)
	}
}
