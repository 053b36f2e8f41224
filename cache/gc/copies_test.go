package gc

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/cache/artifacts"
	"github.com/imgfs/imgfs/cache/internal/layout"
)

// fileCopyOf commits a copy of file entry of layer holding data, last used
// at when, and returns its path.
func fileCopyOf(t *testing.T, s *cache.Store, layer ocispec.Descriptor, entry int, data []byte, when time.Time) string {
	t.Helper()
	c, err := artifacts.NewFileCopy(s, layer, 1, entry, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Commit(); err != nil {
		t.Fatal(err)
	}
	path, _ := layout.FileCopyPath(s.Root(), layer, 1, entry)
	if err := os.Chtimes(path, when, when); err != nil {
		t.Fatal(err)
	}
	return path
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func TestInventoryListsFileCopiesByLayer(t *testing.T) {
	s := testStore(t, cache.Options{})
	now := time.Now()
	l := layerOf(t, s, 1, 64<<10, now)
	imageWithLayers(t, s, "r/a:1", now, l)
	fileCopyOf(t, s, l, 3, bytes.Repeat([]byte{1}, 8192), now)
	fileCopyOf(t, s, l, 7, bytes.Repeat([]byte{2}, 8192), now)
	evicted := ocispec.Descriptor{Digest: digest.FromString("evicted"), Size: 99}
	fileCopyOf(t, s, evicted, 0, []byte("x"), now)

	inv, err := TakeInventory(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range inv.Blobs {
		if b.Digest == l.Digest && (b.FileCopies != 2 || b.FileCopyBytes != 2*8192) {
			t.Errorf("the layer lists %d copies of %d bytes, want 2 of 16384", b.FileCopies, b.FileCopyBytes)
		}
	}
	if len(inv.FileCopies) != 2 {
		t.Fatalf("file copies by layer: %+v, want two layers", inv.FileCopies)
	}
	for _, g := range inv.FileCopies {
		switch g.Layer {
		case l.Digest:
			if g.Copies != 2 || g.Blob != "complete" || len(g.Refs) != 1 || g.Refs[0] != "r/a:1" {
				t.Errorf("the layer's copies: %+v", g)
			}
		case evicted.Digest:
			if g.Copies != 1 || g.Blob != "gone" || len(g.Refs) != 0 {
				t.Errorf("the evicted layer's copies: %+v", g)
			}
		}
	}
}

func TestPruneTakesFileCopiesAndIndexWithTheirLayerButNotPinnedOnes(t *testing.T) {
	s := testStore(t, cache.Options{})
	now := time.Now()
	kept := layerOf(t, s, 1, 64<<10, now.Add(-3*time.Hour))
	old := layerOf(t, s, 2, 64<<10, now.Add(-2*time.Hour))
	imageWithLayers(t, s, "r/a:1", now, kept, old)
	for _, l := range []ocispec.Descriptor{kept, old} {
		if err := artifacts.WriteLayerIndex(s, l, 1, []byte("index of "+l.Digest)); err != nil {
			t.Fatal(err)
		}
	}
	keptCopy := fileCopyOf(t, s, kept, 0, bytes.Repeat([]byte{1}, 32<<10), now.Add(-4*time.Hour))
	oldCopy := fileCopyOf(t, s, old, 0, bytes.Repeat([]byte{2}, 32<<10), now.Add(-time.Minute))
	keptIndex, _ := layout.LayerIndexPath(s.Root(), kept, 1)
	oldIndex, _ := layout.LayerIndexPath(s.Root(), old, 1)
	pin, err := NewPin(s, nil, []digest.Digest{kept.Digest})
	if err != nil {
		t.Fatal(err)
	}
	defer pin.Release()

	plan, err := PlanPrune(s, PruneOptions{All: true, MaxSize: -1, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	dry := plan.Report()
	if len(dry.FileCopies) != 1 || dry.FileCopies[0].Layer != old.Digest || dry.KeptPinnedCopies != 1 || !exists(oldCopy) {
		t.Errorf("dry run: copies %+v, kept pinned %d; the copy is still there: %v", dry.FileCopies, dry.KeptPinnedCopies, exists(oldCopy))
	}
	rep, err := Prune(s, PruneOptions{All: true, MaxSize: -1, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if exists(oldCopy) || exists(oldIndex) || s.Exists(old) {
		t.Errorf("prune --all left the unpinned layer's copy %v, index %v, blob %v", exists(oldCopy), exists(oldIndex), s.Exists(old))
	}
	if !exists(keptCopy) || !exists(keptIndex) || !s.Exists(kept) {
		t.Errorf("prune --all removed the pinned layer's copy %v, index %v, blob %v", !exists(keptCopy), !exists(keptIndex), !s.Exists(kept))
	}
	if rep.Freed != dry.Freed || rep.Indexes != 1 {
		t.Errorf("freed %d (dry run said %d), %d index files", rep.Freed, dry.Freed, rep.Indexes)
	}

	pin.Release()
	rep, err = Prune(s, PruneOptions{All: true, MaxSize: -1, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if exists(keptCopy) || exists(keptIndex) || len(rep.FileCopies) != 1 || rep.FileCopies[0].Reason != "all" {
		t.Errorf("once unpinned, prune --all left the copy %v and index %v: %+v", exists(keptCopy), exists(keptIndex), rep.FileCopies)
	}
	if u, _ := DiskUsage(s); u.Files != 0 {
		t.Errorf("file copies left: %d bytes", u.Files)
	}
}

func TestPruneMaxSizeTakesFileCopiesAndBlobsLeastRecentlyUsedFirst(t *testing.T) {
	s := testStore(t, cache.Options{})
	now := time.Now()
	a := layerOf(t, s, 1, 64<<10, now.Add(-2*time.Hour))
	b := layerOf(t, s, 2, 64<<10, now.Add(-time.Hour))
	imageWithLayers(t, s, "r/a:1", now, a, b)
	oldest := fileCopyOf(t, s, b, 0, bytes.Repeat([]byte{3}, 64<<10), now.Add(-3*time.Hour))
	ofA := fileCopyOf(t, s, a, 0, bytes.Repeat([]byte{4}, 16<<10), now.Add(-time.Minute))
	if err := artifacts.WriteLayerIndex(s, a, 1, bytes.Repeat([]byte{5}, 8192)); err != nil {
		t.Fatal(err)
	}
	u, _ := DiskUsage(s)
	if u.Files != layout.FileDiskBytes(oldest)+layout.FileDiskBytes(ofA) || u.Capped() != u.Complete+u.Partial+u.Indexes+u.Files {
		t.Fatalf("usage %+v does not count the copies", u)
	}
	// Room for all but the oldest copy and the next blob, a: a's copy and
	// index go with it, b and its index stay.
	rep, err := Prune(s, PruneOptions{MaxSize: u.Capped() - layout.FileDiskBytes(oldest) - 1, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if exists(oldest) || s.Exists(a) || exists(ofA) || !s.Exists(b) {
		t.Errorf("after prune --max-size: oldest copy %v, a %v, a's copy %v, b %v", exists(oldest), s.Exists(a), exists(ofA), s.Exists(b))
	}
	reasons := map[string]int{}
	for _, c := range rep.FileCopies {
		reasons[c.Reason] += c.Copies
	}
	if reasons[ReasonOverMaxSize] != 1 || reasons[ReasonWithLayer] != 1 || rep.Indexes != 1 {
		t.Errorf("pruned copies %+v and %d index files", rep.FileCopies, rep.Indexes)
	}
	if after, _ := DiskUsage(s); after.Capped() > u.Capped()-layout.FileDiskBytes(oldest)-1 || u.Capped()-after.Capped() != rep.Freed {
		t.Errorf("capped usage %d → %d, freed %d", u.Capped(), after.Capped(), rep.Freed)
	}
}

func TestPruneRemovesUnreferencedCopiesOfAnEvictedLayer(t *testing.T) {
	s := testStore(t, cache.Options{})
	now := time.Now()
	l := layerOf(t, s, 1, 4096, now)
	imageWithLayers(t, s, "r/a:1", now, l)
	referenced := fileCopyOf(t, s, l, 0, []byte("kept"), now.Add(-time.Hour))
	gone := ocispec.Descriptor{Digest: digest.FromString("gone"), Size: 10}
	orphan := fileCopyOf(t, s, gone, 0, []byte("orphan"), now.Add(-time.Hour))
	fresh := fileCopyOf(t, s, gone, 1, []byte("fresh"), now)
	path, _ := layout.BlobPath(s.Root(), l.Digest)
	os.Remove(path) // evicted: its copy still serves the reference

	rep, err := Prune(s, PruneOptions{MaxSize: -1, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if exists(orphan) || !exists(fresh) || !exists(referenced) {
		t.Errorf("prune: orphan copy left %v, fresh copy kept %v, referenced copy kept %v; %+v", exists(orphan), exists(fresh), exists(referenced), rep.FileCopies)
	}
}

func TestCapEvictsFileCopiesAndAnOpenCopyStaysReadable(t *testing.T) {
	s := testStore(t, cache.Options{})
	now := time.Now()
	l := layerOf(t, s, 1, 64<<10, now)
	data := bytes.Repeat([]byte("copy"), 16<<10)
	path := fileCopyOf(t, s, l, 0, data, now.Add(-time.Hour))
	f, ok := artifacts.OpenFileCopy(s, l, 1, 0, int64(len(data)))
	if !ok {
		t.Fatal("the copy does not open")
	}
	defer f.Close()
	// OpenFileCopy moved its last use to now; make it the oldest again.
	os.Chtimes(path, now.Add(-time.Hour), now.Add(-time.Hour))

	u, _ := DiskUsage(s)
	capOf(s).SetMaxSize(u.Capped()-1, CapOptions{})
	if exists(path) || !s.Exists(l) || capOf(s).Evictions() != 1 {
		t.Fatalf("the cap should evict the older copy, not the blob: copy left %v, blob %v, evictions %d", exists(path), s.Exists(l), capOf(s).Evictions())
	}
	got, err := io.ReadAll(io.NewSectionReader(f, 0, int64(len(data))))
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("the open copy, once evicted, reads %d bytes, %v", len(got), err)
	}
	if g, ok := artifacts.OpenFileCopy(s, l, 1, 0, int64(len(data))); ok {
		g.Close()
		t.Error("an evicted copy still opens")
	}

	// Under the cap, a copy that cannot fit is not started.
	if _, err := artifacts.NewFileCopy(s, l, 1, 1, u.Capped()); !errors.Is(err, cache.ErrOverCap) || !s.Exists(l) {
		t.Errorf("a copy larger than the cap: %v; the blob is still there: %v", err, s.Exists(l))
	}
	if ents, _ := filepath.Glob(filepath.Join(s.Root(), layout.Files, "v1", "*")); len(ents) != 0 {
		t.Errorf("copies left: %v", ents)
	}
}
