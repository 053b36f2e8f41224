package testregistry

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestHostileScenariosTellOneLieEach checks the crafted answers: each
// scenario's tag resolves, the honest parts (config, layer bytes, digests
// of the manifests served by digest) are right, and the lie is the one the
// scenario names.
func TestHostileScenariosTellOneLieEach(t *testing.T) {
	h := StartHostile(t)
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("do not touch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	scenarios, err := InstallHostileScenarios(h, victim)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + h.Host() + "/v2/"
	if resp, _ := get(t, context.Background(), base, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/: %s", resp.Status)
	}
	seen := map[string]bool{}
	for _, s := range scenarios {
		t.Run(s.Name, func(t *testing.T) {
			if seen[s.Name] {
				t.Fatalf("duplicate scenario name %s", s.Name)
			}
			seen[s.Name] = true
			if s.Name == "manifest-stalled" {
				checkStall(t, base+s.Repo+"/manifests/"+s.Tag)
				return
			}
			resp, body := get(t, context.Background(), base+s.Repo+"/manifests/"+s.Tag, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("tag: %s", resp.Status)
			}
			header := resp.Header.Get("Docker-Content-Digest")
			if s.Name == "content-digest-garbage" {
				if header != "this-is-not-a-digest" {
					t.Fatalf("Docker-Content-Digest %q", header)
				}
			} else if header != digest.FromBytes(body).String() {
				t.Fatalf("Docker-Content-Digest %q for bytes %s", header, digest.FromBytes(body))
			}
			var probe struct {
				MediaType string               `json:"mediaType"`
				Config    ocispec.Descriptor   `json:"config"`
				Layers    []ocispec.Descriptor `json:"layers"`
				Manifests []ocispec.Descriptor `json:"manifests"`
			}
			mustJSON(t, body, &probe)
			switch s.Name {
			case "dag-bomb":
				depth := 0
				for probe.MediaType == ocispec.MediaTypeImageIndex {
					if len(probe.Manifests) != 2 || probe.Manifests[0].Digest != probe.Manifests[1].Digest {
						t.Fatalf("index at depth %d lists %d entries", depth, len(probe.Manifests))
					}
					next := probe.Manifests[0]
					body = fetchBlobAt(t, base+s.Repo+"/manifests/"+next.Digest.String(), next)
					probe.Manifests = nil
					mustJSON(t, body, &probe)
					depth++
				}
				if depth != BombDepth {
					t.Fatalf("chain of %d indexes, want %d", depth, BombDepth)
				}
			case "wide-index":
				if len(probe.Manifests) != WideEntries || len(body) >= 4<<20 {
					t.Fatalf("%d entries in %d bytes", len(probe.Manifests), len(body))
				}
				m := probe.Manifests[WideEntries-1]
				body = fetchBlobAt(t, base+s.Repo+"/manifests/"+m.Digest.String(), m)
				mustJSON(t, body, &probe)
			}
			if probe.MediaType != ocispec.MediaTypeImageManifest || len(probe.Layers) != 1 {
				t.Fatalf("bottom manifest: %s with %d layers", probe.MediaType, len(probe.Layers))
			}
			cfg := fetchBlobAt(t, base+s.Repo+"/blobs/"+probe.Config.Digest.String(), probe.Config)
			var config ocispec.Image
			mustJSON(t, cfg, &config)
			layer := probe.Layers[0]
			if layer.Digest != s.Layer.Digest || layer.Size != s.Layer.Size {
				t.Fatalf("manifest states layer %s (%d), scenario says %s (%d)", layer.Digest, layer.Size, s.Layer.Digest, s.Layer.Size)
			}
			if s.LayerBytes == nil {
				if !strings.Contains(string(layer.Digest), "../") || layer.Size != int64(len("do not touch\n")) {
					t.Fatalf("traversal layer %s (%d)", layer.Digest, layer.Size)
				}
				return
			}
			if len(config.RootFS.DiffIDs) != 1 || config.RootFS.DiffIDs[0] != digest.FromBytes(s.LayerBytes) {
				t.Fatalf("config diff_ids %v do not match the uncompressed layer", config.RootFS.DiffIDs)
			}
			// Range reads of the layer, under the digest the manifest states.
			url := base + s.Repo + "/blobs/" + layer.Digest.String()
			resp, part := get(t, context.Background(), url, http.Header{"Range": {"bytes=100-199"}})
			if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(part, s.LayerBytes[100:200]) {
				t.Fatalf("range GET: %s, %d bytes", resp.Status, len(part))
			}
			if want := "bytes 100-199/" + itoa(len(s.LayerBytes)); resp.Header.Get("Content-Range") != want {
				t.Fatalf("Content-Range %q, want %q", resp.Header.Get("Content-Range"), want)
			}
			resp, all := get(t, context.Background(), url, nil)
			if resp.StatusCode != http.StatusOK || !bytes.Equal(all, s.LayerBytes) {
				t.Fatalf("full GET: %s, %d bytes", resp.Status, len(all))
			}
		})
	}
	if h.Requests("hostile/wide-index") == 0 {
		t.Error("Requests does not count")
	}
	if got, _ := os.ReadFile(victim); string(got) != "do not touch\n" {
		t.Error("the victim changed")
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// fetchBlobAt GETs url and checks the bytes against desc.
func fetchBlobAt(t *testing.T, url string, desc ocispec.Descriptor) []byte {
	t.Helper()
	resp, body := get(t, context.Background(), url, nil)
	if resp.StatusCode != http.StatusOK || digest.FromBytes(body) != desc.Digest || int64(len(body)) != desc.Size {
		t.Fatalf("GET %s: %s, %d bytes hashing to %s; want %s (%d)", url, resp.Status, len(body), digest.FromBytes(body), desc.Digest, desc.Size)
	}
	return body
}

// checkStall reads a stalled manifest: the announced length, half the
// bytes, then nothing until the client gives up.
func checkStall(t *testing.T, url string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	half := resp.ContentLength / 2
	if resp.ContentLength <= 0 {
		t.Fatalf("Content-Length %d", resp.ContentLength)
	}
	prefix := make([]byte, half)
	if _, err := io.ReadFull(resp.Body, prefix); err != nil {
		t.Fatalf("half body: %v", err)
	}
	time.AfterFunc(200*time.Millisecond, cancel)
	n, err := io.Copy(io.Discard, resp.Body)
	if n != 0 || err == nil {
		t.Fatalf("after the stall: %d more bytes, err %v", n, err)
	}
}
