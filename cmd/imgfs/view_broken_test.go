package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgfs/imgfs/internal/imagemount"
	"github.com/imgfs/imgfs/internal/layertest"
	"github.com/imgfs/imgfs/internal/testregistry"
)

// oversizedPAXTar is a tar whose fourth entry, etc/hidden, carries a PAX
// record of 1 MiB, which archive/tar refuses to read (and to write), so
// that the layer's stream breaks after its first three entries.
func oversizedPAXTar(t *testing.T) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range []tarEntry{dirEntry("etc/", 0o755), fileEntry("etc/a", "a\n"), fileEntry("etc/b", "b\n")} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Size: int64(len(e.data)), ModTime: viewTime}); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.data)
	}
	tw.Flush() // the last entry's padding; no end-of-archive yet
	record := layertest.PAXRecord("comment", strings.Repeat("x", 1<<20))
	buf.Write(layertest.RawHeader("PaxHeaders.0/etc/hidden", tar.TypeXHeader, int64(len(record)), viewTime))
	buf.Write(record)
	buf.Write(make([]byte, (512-len(record)%512)%512))
	buf.Write(mkTar(t, fileEntry("etc/hidden", "not shown\n"), fileEntry("etc/after", "not shown either\n")))
	return buf.Bytes()
}

// logLineWith waits for a line of the log holding every one of substrs.
func logLineWith(t *testing.T, logFile string, substrs ...string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("a log line with %q", substrs), func() bool {
		b, _ := os.ReadFile(logFile)
		for _, line := range strings.Split(string(b), "\n") {
			all := true
			for _, s := range substrs {
				all = all && strings.Contains(line, s)
			}
			if all {
				return true
			}
		}
		return false
	})
}

// TestViewBrokenLayer: a layer whose fourth entry carries a 1 MiB PAX
// record, which archive/tar refuses, is a broken layer in every stream
// format: ls of rootfs/ and of its own tree fail with EIO (not an empty or
// shorter listing and exit 0, which a scanner would take for a clean
// image), the good layer's tree lists as usual, stats.json says why, and
// one error line names the layer and the cause.
func TestViewBrokenLayer(t *testing.T) {
	fx := registryFixtures(t)
	good, err := testregistry.LayerBlob(mkTar(t, fileEntry("etc/ok", "ok\n")), testregistry.BlobGzip)
	if err != nil {
		t.Fatal(err)
	}
	raw := oversizedPAXTar(t)
	for _, f := range []testregistry.BlobFormat{testregistry.BlobTar, testregistry.BlobGzip, testregistry.BlobZstd} {
		t.Run(f.String(), func(t *testing.T) {
			bad, err := testregistry.LayerBlob(raw, f)
			if err != nil {
				t.Fatal(err)
			}
			pushed, err := fx.reg.PushPrepared("view/broken-"+f.String(), "v1", []testregistry.PreparedLayer{good, bad})
			if err != nil {
				t.Fatal(err)
			}
			badDigest := pushed.Layers[1].Digest
			logFile := filepath.Join(t.TempDir(), "mount.log")
			mnt := mount(t, t.TempDir(), fx.reg.Host()+"/view/broken-"+f.String()+":v1", "--log-file", logFile)

			out, err := exec.Command("ls", filepath.Join(mnt, "rootfs")).CombinedOutput()
			if err == nil || !strings.Contains(string(out), "Input/output error") {
				t.Errorf("ls rootfs/: %v, %q; want EIO and a failed exit", err, out)
			}
			if _, err := os.ReadDir(filepath.Join(mnt, "layers", "1-"+badDigest.Encoded()[:12])); !isEIO(err) {
				t.Errorf("ls of the broken layer's own tree: %v, want EIO", err)
			}
			goodTree := filepath.Join(mnt, "layers", "0-"+pushed.Layers[0].Digest.Encoded()[:12])
			if b, err := os.ReadFile(filepath.Join(goodTree, "etc/ok")); err != nil || string(b) != "ok\n" {
				t.Errorf("the good layer's tree: %q, %v", b, err)
			}

			var row imagemount.LayerStats
			for _, s := range viewStatsOf(t, mnt) {
				if s.Layer == badDigest {
					row = s
				}
			}
			if row.State != "broken" || !strings.Contains(row.Error, "header field too long") || !strings.Contains(row.Error, `after entry "etc/b"`) {
				t.Errorf("stats.json row of the broken layer: %+v; want state broken and the cause", row)
			}
			logLineWith(t, logFile, "level=ERROR", badDigest.String(), "header field too long")
		})
	}
}

// TestViewTarWithoutEndOfArchive: a tar that ends right after its last
// file's data, with neither padding nor end-of-archive blocks, as umoci
// writes them, is whole, not broken: every file lists and reads.
func TestViewTarWithoutEndOfArchive(t *testing.T) {
	fx := registryFixtures(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	files := []tarEntry{dirEntry("etc/", 0o755), fileEntry("etc/a", "a\n"), fileEntry("etc/last", "xyz123")}
	for _, e := range files {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Size: int64(len(e.data)), ModTime: viewTime}); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.data)
	}
	raw := buf.Bytes() // no Flush, no Close: the stream stops after "xyz123"
	if len(raw)%512 == 0 {
		t.Fatal("the tar ends on a block boundary: the test proves nothing")
	}
	for _, f := range []testregistry.BlobFormat{testregistry.BlobTar, testregistry.BlobGzip} {
		t.Run(f.String(), func(t *testing.T) {
			l, err := testregistry.LayerBlob(raw, f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fx.reg.PushPrepared("view/noeoa-"+f.String(), "v1", []testregistry.PreparedLayer{l}); err != nil {
				t.Fatal(err)
			}
			mnt := mount(t, t.TempDir(), fx.reg.Host()+"/view/noeoa-"+f.String()+":v1")
			out, err := exec.Command("ls", filepath.Join(mnt, "rootfs", "etc")).CombinedOutput()
			if err != nil || string(out) != "a\nlast\n" {
				t.Errorf("ls rootfs/etc: %v, %q", err, out)
			}
			if b, err := os.ReadFile(filepath.Join(mnt, "rootfs", "etc", "last")); err != nil || string(b) != "xyz123" {
				t.Errorf("rootfs/etc/last: %q, %v", b, err)
			}
			for _, s := range viewStatsOf(t, mnt) {
				if s.State != "ready" || s.Error != "" {
					t.Errorf("stats.json row %+v, want ready", s)
				}
			}
		})
	}
}

// TestViewLayerOverEntryCap: a layer of more entries than
// --max-layer-entries answers EIO as a broken layer does, in each stream
// format, while the layer under the cap lists; stats.json and one error
// line name the layer, the cap and why there is one.
func TestViewLayerOverEntryCap(t *testing.T) {
	fx := registryFixtures(t)
	const limit = 50
	good, err := testregistry.LayerBlob(mkTar(t, fileEntry("etc/ok", "ok\n")), testregistry.BlobGzip)
	if err != nil {
		t.Fatal(err)
	}
	entries := []tarEntry{dirEntry("many/", 0o755)}
	for i := range limit {
		entries = append(entries, fileEntry(fmt.Sprintf("many/f%03d", i), ""))
	}
	raw := mkTar(t, entries...) // limit+1 entries
	for _, f := range []testregistry.BlobFormat{testregistry.BlobTar, testregistry.BlobGzip, testregistry.BlobEStargz} {
		t.Run(f.String(), func(t *testing.T) {
			big, err := testregistry.LayerBlob(raw, f)
			if err != nil {
				t.Fatal(err)
			}
			repo := "view/overcap-" + f.String()
			pushed, err := fx.reg.PushPrepared(repo, "v1", []testregistry.PreparedLayer{good, big})
			if err != nil {
				t.Fatal(err)
			}
			bigDigest := pushed.Layers[1].Digest
			logFile := filepath.Join(t.TempDir(), "mount.log")
			mnt := mount(t, t.TempDir(), fx.reg.Host()+"/"+repo+":v1", "--log-file", logFile, "--max-layer-entries", fmt.Sprint(limit))

			if _, err := os.ReadDir(filepath.Join(mnt, "rootfs")); !isEIO(err) {
				t.Errorf("ls rootfs/: %v, want EIO", err)
			}
			if _, err := os.ReadDir(filepath.Join(mnt, "layers", "1-"+bigDigest.Encoded()[:12])); !isEIO(err) {
				t.Errorf("ls of the layer's own tree: %v, want EIO", err)
			}
			goodTree := filepath.Join(mnt, "layers", "0-"+pushed.Layers[0].Digest.Encoded()[:12])
			if b, err := os.ReadFile(filepath.Join(goodTree, "etc/ok")); err != nil || string(b) != "ok\n" {
				t.Errorf("the layer under the cap: %q, %v", b, err)
			}
			why := fmt.Sprintf("too many entries: more than %d, the cap on entries per layer, which bounds the memory a layer's index takes", limit)
			var row imagemount.LayerStats
			for _, s := range viewStatsOf(t, mnt) {
				if s.Layer == bigDigest {
					row = s
				}
			}
			if row.State != "broken" || !strings.Contains(row.Error, why) {
				t.Errorf("stats.json row of the layer: %+v; want state broken and %q", row, why)
			}
			logLineWith(t, logFile, "level=ERROR", bigDigest.String(), why)
		})
	}
}
