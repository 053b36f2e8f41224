package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/imgfs/imgfs/internal/testregistry"
)

var digestLine = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// TestIndexPush runs `imgfs index push` as a user would: a line per
// layer, the index digest last (listed in the referrers tag of 2.8), -q
// printing only that, --v2-tag naming its tag, and bad input refused in
// one line naming the flag.
func TestIndexPush(t *testing.T) {
	fx := registryFixtures(t)
	p, err := fx.reg.PushImage("index/app", "v1", testregistry.Image{Layers: []testregistry.Layer{
		testregistry.TarLayer(testregistry.Gzip, testregistry.RandomFile("data/big.bin", 41, 1<<20)),
		testregistry.TarLayer(testregistry.Gzip, testregistry.BytesFile("etc/small", []byte("small\n"))),
	}})
	if err != nil {
		t.Fatal(err)
	}
	ref := fx.reg.Reference("index/app", "v1")
	sizes := []string{"--min-layer-size", "512KiB", "--span-size", "64KiB"}
	cacheDir := t.TempDir()
	args := func(extra ...string) []string {
		return append(append(append([]string{"index", "push", "--cache-dir", cacheDir}, sizes...), extra...), ref)
	}

	r := mustImgfs(t, args()...)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 {
		t.Fatalf("stdout has %d lines, want 2 layers, the index and its digest:\n%s", len(lines), r.stdout)
	}
	short := func(i int) string { return "sha256:" + p.Layers[i].Digest.Encoded()[:12] }
	if !strings.HasPrefix(lines[0], "linux/amd64 layer "+short(0)) || !strings.Contains(lines[0], "spans (layer read from the registry)") {
		t.Errorf("first layer's line: %q", lines[0])
	}
	if !strings.HasPrefix(lines[1], "linux/amd64 layer "+short(1)) || !strings.Contains(lines[1], "skipped:") || !strings.Contains(lines[1], "under the minimum layer size 512.0 KiB") {
		t.Errorf("second layer's line: %q", lines[1])
	}
	index := lines[3]
	if !digestLine.MatchString(index) || !strings.Contains(lines[2], "SOCI index v1 "+index) || !strings.Contains(lines[2], testregistry.ReferrersTag(p.Manifest.Digest)) {
		t.Fatalf("index lines: %q, %q; want the index and the referrers tag, then its digest alone", lines[2], index)
	}
	if _, tagged, err := fx.reg.GetManifest("index/app", testregistry.ReferrersTag(p.Manifest.Digest)); err != nil || !strings.Contains(string(tagged), index) {
		t.Errorf("referrers tag: %v, %s; want it to list %s", err, tagged, index)
	}

	r = mustImgfs(t, args("--v2-tag", "v1-soci")...)
	lines = strings.Split(strings.TrimSpace(r.stdout), "\n")
	v2 := lines[len(lines)-1]
	tagged, _, err := fx.reg.GetManifest("index/app", "v1-soci")
	if err != nil {
		t.Fatal(err)
	}
	if !digestLine.MatchString(v2) || !strings.Contains(lines[len(lines)-3], "SOCI index v2 "+v2) ||
		lines[len(lines)-2] != "SOCI-enabled image index "+tagged.Digest.String()+" pushed as "+fx.reg.Host()+"/index/app:v1-soci" {
		t.Errorf("--v2-tag printed\n%s\nwant the v2 index, the tag and the index digest last", r.stdout)
	}
	r = mustImgfs(t, args("-q")...)
	if strings.TrimSpace(r.stdout) != index {
		t.Errorf("-q printed %q, want only %s", r.stdout, index)
	}

	for _, tc := range []struct {
		args  []string
		code  int
		parts []string
	}{
		{args("--span-size", "1KiB"), 2, []string{"--span-size 1KiB", "64KiB to 32MiB"}},
		{args("--v2-tag", "a:b"), 2, []string{"--v2-tag", `"a:b"`}},
		{args("--min-layer-size", "2MiB"), 1, []string{"no layer of " + ref, "2 under the minimum layer size 2.0 MiB", "lower --min-layer-size"}},
		{append(args()[:len(args())-1], fx.reg.Reference("index/none", "v1")), 1, []string{"index/none:v1", "not found", "check the reference"}},
	} {
		wantError(t, imgfs(t, nil, tc.args...), tc.code, tc.parts...)
	}

	// A token service that grants only pull: refused before any layer is
	// read, with the status and the existing hint.
	issuer := testregistry.StartTokenIssuer(t, t.TempDir(), map[string]string{"alice": "s3cret"})
	tokenReg := testregistry.StartTokenAuth(t, fx.reg, issuer)
	r = imgfs(t, []string{"DOCKER_CONFIG=" + t.TempDir()}, append(append([]string{"index", "push", "--cache-dir", t.TempDir(), "--user", "alice:s3cret"}, sizes...),
		tokenReg.Reference("index/app", "v1"))...)
	wantError(t, r, 1, "push to "+tokenReg.Host()+"/index/app", "401 Unauthorized", "check credentials")
}
