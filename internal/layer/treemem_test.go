package layer

import (
	"fmt"
	"runtime"
	"testing"
)

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestTreeHeapPerEntry: a built tree holds no copy of its entries and no
// lookup maps, only a name, a node and an inode for each (about 90 bytes
// on amd64: a 32-byte node, a 48-byte inode and its slot in the sorted
// children). The bound is generous, so that a heap measure stays robust:
// what it catches is a tree that copies entries (about 300 bytes).
func TestTreeHeapPerEntry(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a tree of 200,000 entries")
	}
	const dirs, files = 400, 500
	idx := &Index{Entries: make([]Entry, 0, dirs*(files+1))}
	for d := range dirs {
		dir := fmt.Sprintf("usr/lib/pkg%03d", d)
		idx.Entries = append(idx.Entries, Entry{Name: dir, Type: TypeDir, Mode: 0o755, Offset: -1})
		for f := range files {
			idx.Entries = append(idx.Entries, Entry{Name: fmt.Sprintf("%s/file%04d.py", dir, f), Type: TypeRegular, Mode: 0o644, Offset: -1})
		}
	}
	before := liveHeap()
	tree := Merge([]*Index{idx})
	perEntry := float64(liveHeap()-before) / float64(len(idx.Entries))
	runtime.KeepAlive(tree)
	t.Logf("merged tree: %.0f bytes of heap per entry", perEntry)
	if perEntry > 200 {
		t.Errorf("the merged tree takes %.0f bytes of heap per entry, want at most 200", perEntry)
	}
	if n, ok := tree.Lookup("usr/lib/pkg399/file0499.py"); !ok || n.Inode().Entry != &idx.Entries[len(idx.Entries)-1] {
		t.Error("the tree's inode does not point at the index's entry")
	}
}
