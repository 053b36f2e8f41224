package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

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
