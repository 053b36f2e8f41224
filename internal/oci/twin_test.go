package oci

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestOCIManifestTranslatesMediaTypesOnly(t *testing.T) {
	d := func(mt, s string) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: mt, Digest: digest.FromString(s), Size: int64(len(s))}
	}
	foreign := d(DockerForeignLayer, "foreign")
	foreign.URLs = []string{"https://example.com/layer.tar.gz"}
	docker := ocispec.Manifest{
		MediaType: DockerManifest,
		Config:    d(DockerConfig, "config"),
		Layers: []ocispec.Descriptor{
			d(DockerLayer, "gzip"), d(dockerLayerTar, "tar"), d(dockerLayerZstd, "zstd"),
			foreign, d(dockerForeignLayerTar, "foreign tar"), d(ocispec.MediaTypeImageLayerGzip, "oci"),
		},
	}
	docker.SchemaVersion = 2
	data, _ := json.Marshal(docker)
	out, err := TwinManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := TwinManifest(data)
	if string(again) != string(out) {
		t.Errorf("conversion is not deterministic")
	}
	var got ocispec.Manifest
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if got.MediaType != ocispec.MediaTypeImageManifest || got.SchemaVersion != 2 {
		t.Errorf("manifest media type %q, schema %d", got.MediaType, got.SchemaVersion)
	}
	if got.Config.MediaType != ocispec.MediaTypeImageConfig || got.Config.Digest != docker.Config.Digest || got.Config.Size != docker.Config.Size {
		t.Errorf("config = %+v", got.Config)
	}
	want := []string{
		ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerZstd,
		ociNonDistributableLayerGzip, ociNonDistributableLayer,
		ocispec.MediaTypeImageLayerGzip,
	}
	for i, l := range got.Layers {
		if l.MediaType != want[i] || l.Digest != docker.Layers[i].Digest || l.Size != docker.Layers[i].Size {
			t.Errorf("layer %d = %+v, want media type %s and the same blob", i, l, want[i])
		}
	}
	if urls := got.Layers[3].URLs; len(urls) != 1 || urls[0] != foreign.URLs[0] {
		t.Errorf("foreign layer urls = %v, want kept", urls)
	}

	docker.Layers = append(docker.Layers, d("application/x-unknown", "?"))
	data, _ = json.Marshal(docker)
	if _, err := TwinManifest(data); err == nil || !strings.Contains(err.Error(), "application/x-unknown") {
		t.Errorf("unknown layer type: err = %v, want a refusal naming it", err)
	}
}

// TestDockerImagesMountAsOCI unpacks Docker-typed images through the mount
// with OCI-only tools, and compares the rootfs with the OCI twin's.
