package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/oci"
	"github.com/imgfs/imgfs/internal/soci"
	"github.com/imgfs/imgfs/internal/testregistry"
)

func TestInspectPrintsTheTreeWithoutLayers(t *testing.T) {
	fx := registryFixtures(t)
	list, err := fx.reg.PushMultiPlatform("multi/docker", "v1", true)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		repo   string
		index  testregistry.PushedIndex
		docker bool
	}{
		{"oci index", "multi", fx.multi.Index, false},
		{"docker list", "multi/docker", list.Index, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cacheDir := t.TempDir()
			ref := fx.reg.Reference(tt.repo, "v1")
			amd, arm := tt.index.Entries[0].Manifest, tt.index.Entries[1].Manifest
			pushedAMD := map[bool]testregistry.Pushed{false: fx.multi.Images[0], true: list.Images[0]}[tt.docker]

			text := mustImgfs(t, "inspect", "--cache-dir", cacheDir, "--platform", "linux/amd64", ref).stdout
			lines := strings.Split(strings.TrimSpace(text), "\n")
			want := []string{
				ref,
				"index  " + tt.index.Index.Digest.String() + "  " + tt.index.Index.MediaType + "  " + strconv.FormatInt(tt.index.Index.Size, 10) + " B",
				"├── manifest  " + amd.Digest.String() + "  linux/amd64  " + amd.MediaType,
				"│   ├── config  " + pushedAMD.Config.Digest.String() + "  " + pushedAMD.Config.MediaType,
				"│   ├── layer  " + pushedAMD.Layers[0].Digest.String() + "  " + pushedAMD.Layers[0].MediaType + "  " + strconv.FormatInt(pushedAMD.Layers[0].Size, 10) + " B (",
				"│   └── layer  " + pushedAMD.Layers[1].Digest.String(),
				"├── manifest  " + arm.Digest.String() + "  linux/arm64/v8  " + arm.MediaType,
				"└── manifest  " + tt.index.Entries[2].Manifest.Digest.String() + "  unknown/unknown  ",
			}
			if len(lines) != len(want) {
				t.Fatalf("inspect printed %d lines, want %d:\n%s", len(lines), len(want), text)
			}
			for i, w := range want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("line %d = %q, want it to start with %q", i, lines[i], w)
				}
			}
			if !strings.HasSuffix(lines[6], "[not selected]") || !strings.Contains(lines[7], "(attestation-manifest)  [not selected]") {
				t.Errorf("unselected entries not marked:\n%s", text)
			}

			var got inspectResult
			r := mustImgfs(t, "inspect", "--cache-dir", cacheDir, "--all-platforms", "--json", ref)
			if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
				t.Fatalf("--json: %v\n%s", err, r.stdout)
			}
			root := got.Root
			if got.Reference != ref || root.Digest != tt.index.Index.Digest || root.Kind != oci.KindIndex || len(root.Children) != 3 {
				t.Fatalf("--json root = %+v", got)
			}
			for i, m := range root.Children {
				if !m.Selected || m.Digest != tt.index.Entries[i].Manifest.Digest || m.Platform == nil {
					t.Errorf("--all-platforms entry %d = %+v, want selected %s with its platform", i, m, tt.index.Entries[i].Manifest.Digest)
				}
			}
			first := root.Children[0]
			wantKids := append([]ocispec.Descriptor{pushedAMD.Config}, pushedAMD.Layers...)
			if len(first.Children) != len(wantKids) {
				t.Fatalf("amd64 children = %d, want %d", len(first.Children), len(wantKids))
			}
			for i, c := range first.Children {
				w := wantKids[i]
				if c.Digest != w.Digest || c.Size != w.Size || c.MediaType != w.MediaType {
					t.Errorf("amd64 child %d = %+v, want %s %d %s", i, c, w.Digest, w.Size, w.MediaType)
				}
			}

			// Metadata is cached; no layer byte was fetched.
			for _, l := range pushedAMD.Layers {
				if _, err := os.Stat(filepath.Join(cacheDir, "blobs", "sha256", l.Digest.Encoded())); err == nil {
					t.Errorf("inspect fetched layer %s", l.Digest)
				}
			}
			if _, err := os.Stat(filepath.Join(cacheDir, "blobs", "sha256", pushedAMD.Config.Digest.Encoded())); err != nil {
				t.Errorf("config not cached: %v", err)
			}
		})
	}
}

func TestVersionAndCompletion(t *testing.T) {
	r := mustImgfs(t, "version")
	if !strings.HasPrefix(r.stdout, "imgfs ") || !strings.Contains(r.stdout, "\ngo: go1.") {
		t.Errorf("version printed %q", r.stdout)
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		if r := mustImgfs(t, "completion", shell); !strings.Contains(r.stdout, "imgfs") {
			t.Errorf("completion %s printed %q", shell, r.stdout)
		}
	}
	script := filepath.Join(t.TempDir(), "imgfs.bash")
	if err := os.WriteFile(script, []byte(mustImgfs(t, "completion", "bash").stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("bash", "-n", script).CombinedOutput(); err != nil {
		t.Errorf("bash -n rejects the completion script: %v\n%s", err, out)
	}
	wantError(t, imgfs(t, nil, "completion", "tcsh"), exitUsage, `unknown shell "tcsh"`)
}

func TestInspectShowsEachLayersIndex(t *testing.T) {
	fx := registryFixtures(t)
	raw := mkTar(t, tarEntry{name: "etc/os-release", mode: 0o644, data: []byte("ID=imgfs\n")},
		tarEntry{name: "usr/share/doc.txt", mode: 0o644, data: []byte(strings.Repeat("text ", 4000))})
	var layers []testregistry.PreparedLayer
	for _, f := range []testregistry.BlobFormat{testregistry.BlobGzip, testregistry.BlobEStargz, testregistry.BlobZstd, testregistry.BlobTar} {
		l, err := testregistry.LayerBlob(raw, f)
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	pushed, err := fx.reg.PushPrepared("inspect/index", "v1", layers)
	if err != nil {
		t.Fatal(err)
	}
	// inspect sizes a zTOC by its descriptor and never reads it.
	ztocBytes := []byte(strings.Repeat("z", 3000))
	zd, err := fx.reg.PushBlob("inspect/index", bytes.NewReader(ztocBytes), int64(len(ztocBytes)))
	if err != nil {
		t.Fatal(err)
	}
	m, config, err := soci.Marshal(soci.V1, []soci.Built{{Layer: pushed.Layers[0], Ztoc: zd, SpanSize: 4 << 20}}, &pushed.Manifest, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fx.reg.PushBlob("inspect/index", bytes.NewReader(config), int64(len(config))); err != nil {
		t.Fatal(err)
	}
	index, err := fx.reg.PushManifest("inspect/index", "", ocispec.MediaTypeImageManifest, m)
	if err != nil {
		t.Fatal(err)
	}
	index.ArtifactType = soci.ArtifactTypeV1
	if _, err := fx.reg.PushReferrersTag("inspect/index", pushed.Manifest.Digest, index); err != nil {
		t.Fatal(err)
	}

	ref := fx.reg.Reference("inspect/index", "v1")
	layerLine := func(text string, i int) string {
		for _, l := range strings.Split(text, "\n") {
			if strings.Contains(l, "layer  "+pushed.Layers[i].Digest.String()) {
				return l
			}
		}
		t.Fatalf("no line for layer %d:\n%s", i, text)
		return ""
	}
	text := mustImgfs(t, "inspect", "--cache-dir", t.TempDir(), ref).stdout
	for i, want := range []string{"[index: SOCI v1 referrer 2.9 KiB]", "[index: eStargz TOC ", "[index: none]", "[index: tar headers]"} {
		if l := layerLine(text, i); !strings.Contains(l, want) {
			t.Errorf("layer %d: %q, want %q", i, l, want)
		}
	}
	for _, flags := range [][]string{{"--index", "none"}, {"--verify", "strict"}} {
		text := mustImgfs(t, append(append([]string{"inspect", "--cache-dir", t.TempDir()}, flags...), ref)...).stdout
		if l := layerLine(text, 0); !strings.HasSuffix(l, "[index: none]") {
			t.Errorf("with %v the gzip layer: %q, want no index (a pass)", flags, l)
		}
	}

	var got inspectResult
	if err := json.Unmarshal([]byte(mustImgfs(t, "inspect", "--cache-dir", t.TempDir(), "--json", ref).stdout), &got); err != nil {
		t.Fatal(err)
	}
	kids := got.Root.Children
	if len(kids) != 5 || kids[1].Index == nil || kids[2].Index == nil {
		t.Fatalf("--json children: %+v", kids)
	}
	if p := kids[1].Index; p.Source != "SOCI v1 referrer" || p.Size != 3000 || p.Index != index.Digest {
		t.Errorf("--json gzip layer index %+v, want the SOCI v1 referrer %s of 3000 bytes", p, index.Digest)
	}
	if p := kids[2].Index; p.Source != "eStargz TOC" || p.Size <= 0 || p.Size >= pushed.Layers[1].Size {
		t.Errorf("--json eStargz layer index %+v, want its TOC's size", p)
	}
	if kids[0].Index != nil {
		t.Errorf("the config has an index: %+v", kids[0].Index)
	}
}
