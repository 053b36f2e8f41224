package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCacheVerifyRepair corrupts committed blobs on disk, one with a
// flipped byte and one cut short, and checks that imgfs cache verify finds
// exactly those, that --repair removes them, and that the next fetch
// brings them back whole.
func TestCacheVerifyRepair(t *testing.T) {
	fx := registryFixtures(t)
	pushed := fx.three[false]
	ref := fx.reg.Reference("three/oci", "v1")
	cacheDir := t.TempDir()
	mustImgfs(t, "fetch", "--quiet", "--cache-dir", cacheDir, ref)
	total := len(verifyBlobs(t, cacheDir))

	r := mustImgfs(t, "cache", "verify", "--cache-dir", cacheDir)
	if want := summaryLine(total, 0, 0); r.stdout != want {
		t.Errorf("verify of a good cache printed %q, want %q", r.stdout, want)
	}

	flipped, cut := pushed.Layers[2], pushed.Layers[0]
	blobFile := func(hex string) string { return filepath.Join(cacheDir, "blobs", "sha256", hex) }
	data, err := os.ReadFile(blobFile(flipped.Digest.Encoded()))
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(blobFile(flipped.Digest.Encoded()), data, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(blobFile(cut.Digest.Encoded()), cut.Size/2); err != nil {
		t.Fatal(err)
	}

	r = imgfs(t, nil, "cache", "verify", "--cache-dir", cacheDir)
	wantError(t, r, 1, "2 bad blobs", "imgfs cache verify --repair")
	wantBadLines(t, r.stdout, flipped.Digest.String(), cut.Digest.String())
	if !strings.HasSuffix(r.stdout, summaryLine(total, 2, 0)) {
		t.Errorf("summary: %q, want %q", r.stdout, summaryLine(total, 2, 0))
	}
	if _, err := os.Stat(blobFile(flipped.Digest.Encoded())); err != nil {
		t.Errorf("verify without --repair removed a blob: %v", err)
	}

	r = mustImgfs(t, "cache", "verify", "--repair", "--cache-dir", cacheDir)
	wantBadLines(t, r.stdout, flipped.Digest.String(), cut.Digest.String())
	if !strings.HasSuffix(r.stdout, summaryLine(total, 2, 2)) {
		t.Errorf("summary: %q, want %q", r.stdout, summaryLine(total, 2, 2))
	}
	for _, hex := range []string{flipped.Digest.Encoded(), cut.Digest.Encoded()} {
		if _, err := os.Stat(blobFile(hex)); err == nil {
			t.Errorf("--repair left bad blob %s", hex)
		}
	}
	r = mustImgfs(t, "cache", "verify", "--cache-dir", cacheDir)
	if want := summaryLine(total-2, 0, 0); r.stdout != want {
		t.Errorf("verify after --repair printed %q, want %q", r.stdout, want)
	}

	mustImgfs(t, "fetch", "--quiet", "--cache-dir", cacheDir, ref)
	if got := len(verifyBlobs(t, cacheDir)); got != total {
		t.Errorf("after a new fetch the cache holds %d good blobs, want %d", got, total)
	}
}

// summaryLine is the last line imgfs cache verify prints.
func summaryLine(checked, bad, removed int) string {
	return fmt.Sprintf("checked %d blobs: %d bad, %d removed\n", checked, bad, removed)
}

// wantBadLines checks that stdout names exactly the given digests as bad,
// one line each.
func wantBadLines(t *testing.T, stdout string, digests ...string) {
	t.Helper()
	var bad []string
	for line := range strings.Lines(stdout) {
		if rest, ok := strings.CutPrefix(line, "bad "); ok {
			d, _, _ := strings.Cut(rest, " ")
			bad = append(bad, d)
		}
	}
	slices.Sort(bad)
	slices.Sort(digests)
	if !slices.Equal(bad, digests) {
		t.Errorf("bad blobs reported: %v, want %v\n%s", bad, digests, stdout)
	}
}
