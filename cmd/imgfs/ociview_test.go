package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/fetch/mediatype"
)

func TestOCIManifestTranslatesMediaTypesOnly(t *testing.T) {
	d := func(mt, s string) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: mt, Digest: digest.FromString(s), Size: int64(len(s))}
	}
	foreign := d(mediatype.DockerForeignLayer, "foreign")
	foreign.URLs = []string{"https://example.com/layer.tar.gz"}
	docker := ocispec.Manifest{
		MediaType: mediatype.DockerManifest,
		Config:    d(mediatype.DockerConfig, "config"),
		Layers: []ocispec.Descriptor{
			d(mediatype.DockerLayer, "gzip"), d(dockerLayerTar, "tar"), d(dockerLayerZstd, "zstd"),
			foreign, d(dockerForeignLayerTar, "foreign tar"), d(ocispec.MediaTypeImageLayerGzip, "oci"),
		},
	}
	docker.SchemaVersion = 2
	data, _ := json.Marshal(docker)
	out, err := ociManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := ociManifest(data)
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
	if _, err := ociManifest(data); err == nil || !strings.Contains(err.Error(), "application/x-unknown") {
		t.Errorf("unknown layer type: err = %v, want a refusal naming it", err)
	}
}

// TestDockerImagesMountAsOCI unpacks Docker-typed images through the mount
// with OCI-only tools, and compares the rootfs with the OCI twin's.
func TestDockerImagesMountAsOCI(t *testing.T) {
	fx := registryFixtures(t)
	list, err := fx.reg.PushMultiPlatform("multi/docker", "v1", true)
	if err != nil {
		t.Fatal(err)
	}
	cacheDir := t.TempDir()
	tests := []struct {
		name, repo, twin string
		registryRoot     ocispec.Descriptor
		platformArgs     []string
	}{
		{"schema2 manifest", "three/docker", "three/oci", fx.three[true].Manifest, nil},
		{"manifest list", "multi/docker", "multi", list.Index.Index, []string{"--platform", "linux/amd64"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mnt := mount(t, cacheDir, fx.reg.Reference(tt.repo, "v1"), tt.platformArgs...)
			names := refNames(readIndex(t, mnt))
			if got := names["v1-docker"]; got.Digest != tt.registryRoot.Digest || got.MediaType != tt.registryRoot.MediaType {
				t.Errorf("v1-docker = %+v, want the registry's %s", got, tt.registryRoot.Digest)
			}
			if got := names["v1"].MediaType; got != ocispec.MediaTypeImageManifest {
				t.Errorf("v1 media type = %s, want the OCI view", got)
			}
			// The converted manifest is a blob of its own, verified in the
			// cache, and the registry's stays next to it.
			for _, d := range []ocispec.Descriptor{names["v1"], tt.registryRoot} {
				if _, err := os.Stat(filepath.Join(mnt, "blobs", "sha256", d.Digest.Encoded())); err != nil {
					t.Errorf("blobs/ lacks %s: %v", d.Digest, err)
				}
			}
			if _, err := os.Stat(filepath.Join(cacheDir, "blobs", "sha256", names["v1"].Digest.Encoded())); err != nil {
				t.Errorf("the OCI view %s is not in the cache: %v", names["v1"].Digest, err)
			}

			copyDir := filepath.Join(t.TempDir(), "copy")
			run(t, "skopeo", "copy", "oci:"+mnt+":v1", "dir:"+copyDir)
			var copied ocispec.Manifest
			if data, err := os.ReadFile(filepath.Join(copyDir, "manifest.json")); err != nil || json.Unmarshal(data, &copied) != nil {
				t.Fatalf("skopeo copy wrote no manifest: %v", err)
			}
			for _, l := range copied.Layers {
				if _, err := os.Stat(filepath.Join(copyDir, l.Digest.Encoded())); err != nil {
					t.Errorf("skopeo copy lacks layer %s", l.Digest)
				}
			}

			got := unpack(t, mnt)
			want := unpack(t, mount(t, cacheDir, fx.reg.Reference(tt.twin, "v1"), tt.platformArgs...))
			run(t, "diff", "-r", got, want)
		})
	}
}

// unpack unpacks the image named v1 in the layout at dir with umoci and
// returns its rootfs.
func unpack(t *testing.T, dir string) string {
	t.Helper()
	bundle := filepath.Join(t.TempDir(), "bundle")
	run(t, "umoci", "unpack", "--image", dir+":v1", bundle)
	return filepath.Join(bundle, "rootfs")
}
