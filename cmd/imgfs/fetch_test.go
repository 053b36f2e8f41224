package main

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/testregistry"
)

func TestFetchStoresVerifiedLayoutThatSkopeoReads(t *testing.T) {
	fx := registryFixtures(t)
	for _, docker := range []bool{false, true} {
		// skopeo's oci: transport reads only entries with OCI media
		// types, so the copy check is for the OCI image.
		pushed := fx.three[docker]
		repo := map[bool]string{false: "three/oci", true: "three/docker"}[docker]
		ref := fx.reg.Reference(repo, "v1")
		cacheDir := t.TempDir()
		r := mustImgfs(t, "fetch", "--cache-dir", cacheDir, "--label", "org.example.team=infra", ref)
		index := readIndex(t, cacheDir)
		if entry := refNames(index)[ref]; entry.Digest != pushed.Manifest.Digest || entry.Annotations["org.example.team"] != "infra" {
			t.Errorf("docker=%v: cache index.json entry for %s = %+v, want the manifest with the --label annotation", docker, ref, entry)
		}
		for _, want := range []string{"manifest-sha256:", "config-sha256:", "layer-sha256:", "done", "elapsed:"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("docker=%v: progress lacks %q:\n%s", docker, want, r.stdout)
			}
		}
		blobs := verifyBlobs(t, cacheDir)
		for _, d := range append([]ocispec.Descriptor{pushed.Manifest, pushed.Config}, pushed.Layers...) {
			if !blobs[d.Digest.String()] {
				t.Errorf("docker=%v: blob %s missing from cache", docker, d.Digest)
			}
			// Provenance: a later lazy reader must know where to fetch it.
			source, err := os.ReadFile(filepath.Join(cacheDir, "sources", "sha256", d.Digest.Encoded()))
			if err != nil || strings.TrimSpace(string(source)) != fx.reg.Host()+"/"+repo {
				t.Errorf("docker=%v: source of %s = %q, %v; want %s/%s", docker, d.Digest, source, err, fx.reg.Host(), repo)
			}
		}
		if docker {
			continue
		}
		out := filepath.Join(t.TempDir(), "copy")
		run(t, "skopeo", "copy", "oci:"+cacheDir+":"+ref, "dir:"+out)
		for _, l := range pushed.Layers {
			if _, err := os.Stat(filepath.Join(out, l.Digest.Encoded())); err != nil {
				t.Errorf("skopeo copy lacks layer %s", l.Digest)
			}
		}
		if entries, _ := os.ReadDir(filepath.Join(cacheDir, "ingest")); len(entries) != 0 {
			t.Errorf("ingest/ not empty after fetch: %v", entries)
		}
	}
}

func TestFetchPlatformSelection(t *testing.T) {
	fx := registryFixtures(t)
	ref := fx.reg.Reference("multi", "v1")
	amd, arm := fx.multi.Images[0], fx.multi.Images[1]
	att := fx.multi.Attestation
	layersOf := func(p testregistry.Pushed) []digest.Digest {
		var out []digest.Digest
		for _, l := range p.Layers {
			out = append(out, l.Digest)
		}
		return out
	}
	tests := []struct {
		name    string
		args    []string
		want    []digest.Digest
		wantNot []digest.Digest
	}{
		{"arm64 only", []string{"--platform", "linux/arm64"},
			append(layersOf(arm), arm.Manifest.Digest, arm.Config.Digest),
			append([]digest.Digest{amd.Manifest.Digest, att.Manifest.Digest}, amd.Layers[1].Digest)},
		{"metadata only", []string{"--metadata-only", "--platform", "linux/arm64"},
			[]digest.Digest{arm.Manifest.Digest, arm.Config.Digest},
			layersOf(arm)},
		{"all metadata", []string{"--all-metadata", "--platform", "linux/arm64"},
			append(layersOf(arm), amd.Manifest.Digest, amd.Config.Digest, arm.Manifest.Digest, arm.Config.Digest, att.Manifest.Digest),
			[]digest.Digest{amd.Layers[1].Digest}},
		{"all platforms", []string{"--all-platforms"},
			append(append(layersOf(arm), layersOf(amd)...), att.Manifest.Digest, fx.multi.Index.Index.Digest),
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cacheDir := t.TempDir()
			r := mustImgfs(t, append(append([]string{"fetch", "--cache-dir", cacheDir}, tt.args...), ref)...)
			blobs := verifyBlobs(t, cacheDir)
			for _, d := range tt.want {
				if !blobs[d.String()] {
					t.Errorf("missing %s\n%s", d, r.stdout)
				}
			}
			for _, d := range tt.wantNot {
				if blobs[d.String()] {
					t.Errorf("fetched %s, which it should not\n%s", d, r.stdout)
				}
			}
		})
	}
}

func TestSecondFetchTransfersNoBlobBytes(t *testing.T) {
	fx := registryFixtures(t)
	proxy := testregistry.StartProxy(t, fx.reg.Host())
	ref := proxy.Host() + "/three/oci:v1"
	cacheDir := t.TempDir()
	mustImgfs(t, "fetch", "--cache-dir", cacheDir, ref)
	pushed := fx.three[false]
	var total int64 = pushed.Config.Size
	for _, l := range pushed.Layers {
		total += l.Size
	}
	if got := proxy.BlobBytes(); got != total {
		t.Errorf("first fetch pulled %d blob bytes, want each blob once: %d", got, total)
	}
	proxy.ResetCounters()
	r := mustImgfs(t, "fetch", "--cache-dir", cacheDir, ref)
	if got := proxy.BlobBytes(); got != 0 {
		t.Errorf("second fetch pulled %d blob bytes, want 0", got)
	}
	if strings.Count(r.stdout, "exists") != 2+len(pushed.Layers) {
		t.Errorf("second fetch should report every blob as exists:\n%s", r.stdout)
	}
}

func TestCorruptBlobIsRejectedAndNotCommitted(t *testing.T) {
	fx := registryFixtures(t)
	proxy := testregistry.StartProxy(t, fx.reg.Host())
	large := fx.three[false].Layers[2]
	proxy.SetFault(testregistry.Corrupt.On(large.Digest.String()))
	cacheDir := t.TempDir()
	r := imgfs(t, nil, "fetch", "--cache-dir", cacheDir, proxy.Host()+"/three/oci:v1")
	wantError(t, r, 1, "digest mismatch", large.Digest.String())
	if _, err := os.Stat(filepath.Join(cacheDir, "blobs", "sha256", large.Digest.Encoded())); err == nil {
		t.Error("corrupt blob was committed")
	}
	verifyBlobs(t, cacheDir)
	entries, _ := os.ReadDir(filepath.Join(cacheDir, "ingest"))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("half-written file left: %s", e.Name())
		}
	}
}

func TestFetchBadInput(t *testing.T) {
	fx := registryFixtures(t)
	proxy := testregistry.StartProxy(t, fx.reg.Host())
	host := proxy.Host()
	tlsServer := httptest.NewUnstartedServer(http.NotFoundHandler())
	tlsServer.Config.ErrorLog = log.New(io.Discard, "", 0)
	tlsServer.StartTLS()
	defer tlsServer.Close()

	big := make([]byte, 5<<20)
	copy(big, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}`)
	for i := 78; i < len(big); i++ {
		big[i] = ' '
	}
	schema1 := []byte(`{"schemaVersion":1,"name":"bad/schema1","tag":"v1","fsLayers":[],"history":[]}`)
	oddType := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.example.thing+json"}`)
	oci := http.Header{"Content-Type": {ocispec.MediaTypeImageManifest}}
	proxy.Override("GET", "/v2/bad/big/manifests/v1", 200, oci, big)
	proxy.Override("GET", "/v2/bad/schema1/manifests/v1", 200,
		http.Header{"Content-Type": {"application/vnd.docker.distribution.manifest.v1+prettyjws"}}, schema1)
	proxy.Override("GET", "/v2/bad/odd/manifests/v1", 200, http.Header{"Content-Type": {"application/vnd.example.thing+json"}}, oddType)
	proxy.Override("GET", "/v2/bad/auth/manifests/v1", 401,
		http.Header{"WWW-Authenticate": {`Basic realm="test"`}}, []byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
	proxy.Override("GET", "/v2/bad/lying/manifests/v1", 200,
		http.Header{"Content-Type": {ocispec.MediaTypeImageManifest}, "Docker-Content-Digest": {digest.FromString("other").String()}}, fx.three[false].ManifestBytes)

	roDir := t.TempDir()
	if err := mountReadOnlyTmpfs(roDir); err != nil {
		t.Fatalf("read-only tmpfs for the unwritable cache case: %v", err)
	}
	t.Cleanup(func() { unmountQuietly(roDir) })

	tests := []struct {
		name  string
		args  []string
		code  int
		parts []string
	}{
		{"malformed reference", []string{"UPPER/Case::x"}, 2, []string{"invalid reference", "UPPER/Case::x"}},
		{"unknown host", []string{"no-such-host.invalid/app:v1"}, 1, []string{"unknown host", "no-such-host.invalid"}},
		{"connection refused", []string{"127.0.0.1:1/app:v1"}, 1, []string{"127.0.0.1:1", "refused"}},
		{"tag not found", []string{host + "/three/oci:nope"}, 1, []string{"not found", host + "/three/oci:nope"}},
		{"unauthorized", []string{host + "/bad/auth:v1"}, 1, []string{"unauthorized", "check credentials"}},
		{"unknown CA", []string{strings.TrimPrefix(tlsServer.URL, "https://") + "/app:v1", "--plain-http=false"}, 1, []string{"unknown authority", "--tlscacert", "--skip-verify"}},
		{"manifest over 4 MiB", []string{host + "/bad/big:v1"}, 1, []string{"too large", "4 MiB"}},
		{"digest mismatch", []string{host + "/bad/lying:v1"}, 1, []string{"digest mismatch", host + "/bad/lying:v1"}},
		{"schema1", []string{host + "/bad/schema1:v1"}, 1, []string{"schema1 manifests are not supported"}},
		{"unknown root media type", []string{host + "/bad/odd:v1"}, 1, []string{"application/vnd.example.thing+json"}},
		{"unwritable cache", []string{"--cache-dir", filepath.Join(roDir, "cache"), host + "/three/oci:v1"}, 1, []string{"cache directory", "read-only file system"}},
		{"bad platform", []string{"--platform", "linux/!!", host + "/multi:v1"}, 2, []string{"--platform"}},
		{"no matching platform", []string{"--platform", "linux/s390x", host + "/multi:v1"}, 1, []string{"no manifest for linux/s390x", "linux/arm64"}},
		{"missing argument", nil, 2, []string{"fetch takes 1 argument"}},
		{"unknown flag", []string{"--nope", "x"}, 2, []string{"unknown flag"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"fetch"}, tt.args...)
			if !strings.Contains(strings.Join(tt.args, " "), "--cache-dir") {
				args = append([]string{"fetch", "--cache-dir", t.TempDir()}, tt.args...)
			}
			r := imgfs(t, nil, args...)
			wantError(t, r, tt.code, tt.parts...)
		})
	}
}
