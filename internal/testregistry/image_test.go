package testregistry

import (
	"archive/tar"
	"reflect"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Golden digests of the fixtures. They pin determinism across runs and
// machines; if a toolchain upgrade changes compress/flate output they move,
// and every test that hard-codes a fixture digest must move with them.
const (
	goldenThreeOCI    = "sha256:e6b702350d11259c3f11ce12fcaca3a85ca9994b8feefad375fd5e51521d6b9d"
	goldenThreeDocker = "sha256:054c7e9947380052e374c7c8b3e1a7c382956d3cf4d25ec44669844cc37c99e5"
	goldenMultiOCI    = "sha256:b985320c9fc9dc39c90b5dcb0b7525c4a2e8a6fddc1e8adc804d95a28f0ebc8a"
	goldenMultiDocker = "sha256:c3ffc238511277a5302a452c60178088a5f7486b6fa11e97dc93d68cef369403"
)

func TestThreeLayerImage(t *testing.T) {
	r := Start(t)
	var pushed [2]Pushed
	for i, docker := range []bool{false, true} {
		repo := "three/oci"
		wantManifest, wantConfig := ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig
		golden := goldenThreeOCI
		if docker {
			repo = "three/docker"
			wantManifest, wantConfig = MediaTypeDockerManifest, MediaTypeDockerConfig
			golden = goldenThreeDocker
		}
		img := ThreeLayerImage(docker)
		p, err := r.PushImage(repo, "v1", img)
		if err != nil {
			t.Fatal(err)
		}
		pushed[i] = p
		t.Logf("%s: manifest %s config %s layers %v", repo, p.Manifest.Digest, p.Config.Digest, p.Layers)
		if p.Manifest.Digest.String() != golden {
			t.Errorf("%s: manifest digest %s, golden %s", repo, p.Manifest.Digest, golden)
		}

		desc, body, err := r.GetManifest(repo, "v1")
		if err != nil {
			t.Fatal(err)
		}
		if desc.Digest != p.Manifest.Digest || desc.MediaType != wantManifest || string(body) != string(p.ManifestBytes) {
			t.Fatalf("%s:v1 resolves to %v, pushed %v", repo, desc, p.Manifest)
		}
		var m ocispec.Manifest
		mustJSON(t, body, &m)
		if m.SchemaVersion != 2 || m.MediaType != wantManifest || m.Config.MediaType != wantConfig ||
			m.Config.Digest != p.Config.Digest || !reflect.DeepEqual(m.Layers, p.Layers) {
			t.Fatalf("manifest %s does not match what was pushed", body)
		}

		cfgBytes := fetchBlob(t, r.Host(), repo, m.Config)
		var cfg ocispec.Image
		mustJSON(t, cfgBytes, &cfg)
		if cfg.OS != "linux" || cfg.Architecture != "amd64" || cfg.RootFS.Type != "layers" ||
			!reflect.DeepEqual(cfg.RootFS.DiffIDs, p.DiffIDs) || len(cfg.History) != 3 || cfg.Created == nil {
			t.Fatalf("config %s", cfgBytes)
		}

		if docker {
			// Same layer blobs as the OCI flavour (checked below); reading
			// 34 MiB again would only slow the race build.
			continue
		}
		// Check every layer end to end: blob digest, diff_id of the
		// decompressed tar, and the tar's entries against Layer.Files.
		for j, l := range m.Layers {
			tarBytes := decompress(t, l.MediaType, fetchBlob(t, r.Host(), repo, l))
			if got := digest.FromBytes(tarBytes); got != cfg.RootFS.DiffIDs[j] {
				t.Errorf("layer %d: diff_id %s, config says %s", j, got, cfg.RootFS.DiffIDs[j])
			}
			if got, want := readTar(t, tarBytes), expectedEntries(t, img.Layers[j]); !reflect.DeepEqual(got, want) {
				t.Errorf("layer %d entries:\n got %+v\nwant %+v", j, got, want)
			}
		}
	}
	wantTypes := [][]string{
		{ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayer},
		{MediaTypeDockerLayerGzip, MediaTypeDockerLayerGzip, MediaTypeDockerLayer},
	}
	for i := range pushed {
		for j, l := range pushed[i].Layers {
			if l.MediaType != wantTypes[i][j] {
				t.Errorf("flavour %d layer %d: media type %s, want %s", i, j, l.MediaType, wantTypes[i][j])
			}
			if l.Digest != pushed[0].Layers[j].Digest {
				t.Errorf("layer %d differs between flavours", j)
			}
		}
	}
	if pushed[0].Config.Digest != pushed[1].Config.Digest {
		t.Errorf("config bytes differ between flavours")
	}
}

func TestPushByDigestOnly(t *testing.T) {
	r := Start(t)
	p, err := r.PushImage("bydigest", "", Image{Layers: []Layer{TarLayer(Gzip, BytesFile("a", []byte("a")))}})
	if err != nil {
		t.Fatal(err)
	}
	desc, _, err := r.GetManifest("bydigest", p.Manifest.Digest.String())
	if err != nil || desc.Digest != p.Manifest.Digest {
		t.Fatalf("GET by digest: %v %v", desc, err)
	}
	if _, _, err := r.GetManifest("bydigest", "latest"); err == nil {
		t.Fatal("digest-only push created a tag")
	}
	if got, want := r.Reference("bydigest", p.Manifest.Digest.String()), r.Host()+"/bydigest@"+p.Manifest.Digest.String(); got != want {
		t.Errorf("Reference = %s, want %s", got, want)
	}
}

func TestLayerKinds(t *testing.T) {
	r := Start(t)
	files := []File{
		RandomFile("usr/lib/big.bin", 7, 300<<10),
		BytesFile("etc/os-release", []byte("ID=imgfs\n")),
		{Name: "usr/bin/sh", Type: tar.TypeSymlink, Linkname: "busybox"},
		{Name: "var/empty", Type: tar.TypeDir, Mode: 0o700},
		{Name: "/usr/bin/busybox", Mode: 0o755, Data: []byte("#!fake\n")},
	}
	raw := RawLayer("application/vnd.example.raw", []byte(`{"raw":true}`))
	img := Image{Layers: []Layer{
		TarLayer(Uncompressed, files...),
		TarLayer(Gzip, files...),
		TarLayer(Zstd, files...),
		raw,
	}}
	p, err := r.PushImage("kinds", "v1", img)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerZstd, "application/vnd.example.raw"}
	for i, l := range p.Layers {
		if l.MediaType != want[i] {
			t.Errorf("layer %d: %s, want %s", i, l.MediaType, want[i])
		}
		blob := fetchBlob(t, r.Host(), "kinds", l)
		if i == 3 {
			if string(blob) != `{"raw":true}` || p.DiffIDs[i] != l.Digest {
				t.Errorf("raw layer: %q, diff_id %s", blob, p.DiffIDs[i])
			}
			continue
		}
		tarBytes := decompress(t, l.MediaType, blob)
		if digest.FromBytes(tarBytes) != p.DiffIDs[i] {
			t.Errorf("layer %d: diff_id mismatch", i)
		}
		if i > 0 && p.DiffIDs[i] != p.DiffIDs[0] {
			t.Errorf("layer %d: same files gave a different tar", i)
		}
		if got, want := readTar(t, tarBytes), expectedEntries(t, img.Layers[i]); !reflect.DeepEqual(got, want) {
			t.Errorf("layer %d entries:\n got %+v\nwant %+v", i, got, want)
		}
	}
	// Implicit parents come first, and the explicit directory keeps its mode.
	entries, _ := img.Layers[0].TarEntries()
	var names []string
	for _, e := range entries {
		names = append(names, e.Name)
	}
	wantNames := []string{"etc", "etc/os-release", "usr", "usr/bin", "usr/bin/busybox", "usr/bin/sh", "usr/lib", "usr/lib/big.bin", "var", "var/empty"}
	if !reflect.DeepEqual(names, wantNames) {
		t.Errorf("entries %v, want %v", names, wantNames)
	}
}

func TestMultiPlatform(t *testing.T) {
	r := Start(t)
	for _, docker := range []bool{false, true} {
		repo, wantIndex, golden := "multi/oci", ocispec.MediaTypeImageIndex, goldenMultiOCI
		if docker {
			repo, wantIndex, golden = "multi/docker", MediaTypeDockerManifestList, goldenMultiDocker
		}
		mp, err := r.PushMultiPlatform(repo, "latest", docker)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: index %s", repo, mp.Index.Index.Digest)
		if mp.Index.Index.Digest.String() != golden {
			t.Errorf("%s: index digest %s, golden %s", repo, mp.Index.Index.Digest, golden)
		}
		desc, body, err := r.GetManifest(repo, "latest")
		if err != nil {
			t.Fatal(err)
		}
		if desc.Digest != mp.Index.Index.Digest || desc.MediaType != wantIndex {
			t.Fatalf("%s:latest resolves to %v, pushed %v", repo, desc, mp.Index.Index)
		}
		var idx ocispec.Index
		mustJSON(t, body, &idx)
		if len(idx.Manifests) != 3 {
			t.Fatalf("index has %d entries", len(idx.Manifests))
		}
		wantPlatforms := []ocispec.Platform{PlatformAMD64, PlatformARM64, {OS: "unknown", Architecture: "unknown"}}
		for i, e := range idx.Manifests {
			if e.Platform == nil || !reflect.DeepEqual(*e.Platform, wantPlatforms[i]) {
				t.Errorf("entry %d platform %v, want %v", i, e.Platform, wantPlatforms[i])
			}
			d, _, err := r.GetManifest(repo, e.Digest.String())
			if err != nil || d.Digest != e.Digest || d.MediaType != e.MediaType || d.Size != e.Size {
				t.Errorf("entry %d: GET by digest gave %v, %v; entry %v", i, d, err, e)
			}
		}
		att := idx.Manifests[2]
		if att.MediaType != ocispec.MediaTypeImageManifest ||
			att.Annotations[AnnotationReferenceType] != ReferenceTypeAttestation ||
			att.Annotations[AnnotationReferenceDigest] != mp.Images[0].Manifest.Digest.String() {
			t.Errorf("attestation entry %+v", att)
		}
		_, attBody, err := r.GetManifest(repo, att.Digest.String())
		if err != nil {
			t.Fatal(err)
		}
		var am ocispec.Manifest
		mustJSON(t, attBody, &am)
		if len(am.Layers) != 1 || am.Layers[0].MediaType != MediaTypeInToto {
			t.Fatalf("attestation manifest %s", attBody)
		}
		var stmt struct {
			Subject []struct{ Digest map[string]string }
		}
		mustJSON(t, fetchBlob(t, r.Host(), repo, am.Layers[0]), &stmt)
		if len(stmt.Subject) != 1 || "sha256:"+stmt.Subject[0].Digest["sha256"] != mp.Images[0].Manifest.Digest.String() {
			t.Errorf("in-toto subject %+v", stmt.Subject)
		}
		// The platforms share their base layer blob and differ above it.
		a, b := mp.Images[0].Layers, mp.Images[1].Layers
		if a[0].Digest != b[0].Digest || a[1].Digest == b[1].Digest {
			t.Errorf("layer sharing: amd64 %v arm64 %v", a, b)
		}
	}
}
