package main

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgfs/imgfs/internal/testregistry"
)

// viewNodesOf reads stats.json's count of the view nodes the server holds.
func viewNodesOf(t *testing.T, mnt string) int64 {
	t.Helper()
	var doc struct {
		FUSE struct {
			ViewNodes *int64 `json:"view_nodes"`
		} `json:"fusefs"`
	}
	data, err := os.ReadFile(filepath.Join(mnt, ".imgfs", "stats.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &doc); err != nil || doc.FUSE.ViewNodes == nil {
		t.Fatalf("stats.json has no fusefs.view_nodes: %v\n%s", err, data)
	}
	return *doc.FUSE.ViewNodes
}

// TestViewNodesForgotten: once find has walked rootfs/, the server holds
// no node for the files it walked (the kernel forgets them as soon as it
// lets go; it may keep the directories), and find lists every entry, a
// second time too; hard links still share one inode and a file still
// reads.
func TestViewNodesForgotten(t *testing.T) {
	fx := registryFixtures(t)
	const dirs, files = 8, 250
	entries := []tarEntry{dirEntry("top/", 0o755)}
	for d := range dirs {
		entries = append(entries, dirEntry(fmt.Sprintf("top/d%d/", d), 0o755))
		for f := range files {
			entries = append(entries, fileEntry(fmt.Sprintf("top/d%d/f%03d", d, f), fmt.Sprintf("%d-%d", d, f)))
		}
	}
	entries = append(entries, tarEntry{name: "top/link", typ: tar.TypeLink, link: "top/d0/f000"})
	l, err := testregistry.LayerBlob(mkTar(t, entries...), testregistry.BlobGzip)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fx.reg.PushPrepared("view/forget", "v1", []testregistry.PreparedLayer{l}); err != nil {
		t.Fatal(err)
	}
	mnt := mount(t, t.TempDir(), fx.reg.Host()+"/view/forget:v1")
	rootfs := filepath.Join(mnt, "rootfs")
	if _, err := os.ReadDir(rootfs); err != nil {
		t.Fatal(err)
	}
	tops := viewNodesOf(t, mnt) // after ls: rootfs/'s own entries

	for pass := range 2 {
		out, err := exec.Command("sh", "-c", "find '"+rootfs+"' | wc -l").CombinedOutput()
		if want := fmt.Sprint(len(entries) + 1); err != nil || strings.TrimSpace(string(out)) != want {
			t.Fatalf("find rootfs, pass %d: %v, %s lines, want %s", pass, err, out, want)
		}
		// The kernel may keep the directories it walked (here 9 of 2010
		// entries); every file it let go of is forgotten.
		waitFor(t, "the kernel to forget the walked files", func() bool { return viewNodesOf(t, mnt) <= tops+dirs+1 })
	}

	a, errA := os.Stat(filepath.Join(rootfs, "top/d0/f000"))
	b, errB := os.Stat(filepath.Join(rootfs, "top/link"))
	if errA != nil || errB != nil || !os.SameFile(a, b) {
		t.Errorf("the hard link and its target: %v, %v, not one inode", errA, errB)
	}
	if data, err := os.ReadFile(filepath.Join(rootfs, "top/d7/f249")); err != nil || string(data) != "7-249" {
		t.Errorf("top/d7/f249: %q, %v", data, err)
	}
}
