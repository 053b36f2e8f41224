package gc

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/imgfs/imgfs/cache/internal/layout"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache"
)

// ingestBytes commits data as a blob of mediaType, last used at when.
func ingestBytes(t *testing.T, s *cache.Store, mediaType string, data []byte, when time.Time) ocispec.Descriptor {
	t.Helper()
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	if err := s.Ingest(context.Background(), desc, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	path, _ := layout.BlobPath(s.Root(), desc.Digest)
	if err := os.Chtimes(path, when, when); err != nil {
		t.Fatal(err)
	}
	return desc
}

// imageWithLayers commits a manifest over the given layers and a config,
// names it ref in index.json, and returns the manifest.
func imageWithLayers(t *testing.T, s *cache.Store, ref string, when time.Time, layers ...ocispec.Descriptor) ocispec.Descriptor {
	t.Helper()
	config := ingestBytes(t, s, ocispec.MediaTypeImageConfig, []byte(`{"ref":"`+ref+`"}`), when)
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: config, Layers: layers}
	m.SchemaVersion = 2
	data, _ := json.Marshal(m)
	desc := ingestBytes(t, s, ocispec.MediaTypeImageManifest, data, when)
	if err := s.SetRef(ref, desc, nil); err != nil {
		t.Fatal(err)
	}
	return desc
}

func layerOf(t *testing.T, s *cache.Store, seed byte, size int, when time.Time) ocispec.Descriptor {
	t.Helper()
	data := bytes.Repeat([]byte{seed}, size)
	return ingestBytes(t, s, ocispec.MediaTypeImageLayer, data, when)
}

func TestLRUOrderIsOldestFirstThenByName(t *testing.T) {
	t0 := time.Unix(1000, 0)
	items := []evictable{
		{name: "sha256:c", lastUse: t0.Add(2 * time.Hour)},
		{name: "sha256:b", lastUse: t0},
		{name: "sha256:a", lastUse: t0},
		{name: "sha256:d", lastUse: t0.Add(time.Hour)},
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].before(items[j]) })
	var got []digest.Digest
	for _, e := range items {
		got = append(got, digest.Digest(e.name))
	}
	want := []digest.Digest{"sha256:a", "sha256:b", "sha256:d", "sha256:c"}
	if !equalDigests(got, want) {
		t.Errorf("LRU order %v, want %v", got, want)
	}
}

func equalDigests(a, b []digest.Digest) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPruneMaxSizeTakesLeastRecentlyUsedAndKeepsPinned(t *testing.T) {
	s := testStore(t, cache.Options{})
	now := time.Now()
	old := layerOf(t, s, 1, 64<<10, now.Add(-3*time.Hour))
	pinnedOld := layerOf(t, s, 2, 64<<10, now.Add(-4*time.Hour))
	recent := layerOf(t, s, 3, 64<<10, now.Add(-time.Hour))
	imageWithLayers(t, s, "r/a:1", now, old, pinnedOld, recent)
	pin, err := NewPin(s, []string{"r/a:1"}, []digest.Digest{pinnedOld.Digest})
	if err != nil {
		t.Fatal(err)
	}
	defer pin.Release()

	u, _ := DiskUsage(s)
	// Room for all but one layer: the oldest unpinned one must go.
	rep, err := Prune(s, PruneOptions{MaxSize: u.Capped() - 1, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Blobs) != 1 || rep.Blobs[0].Digest != old.Digest {
		t.Fatalf("pruned %+v, want only %s", rep.Blobs, old.Digest)
	}
	if rep.KeptPinned != 1 || s.Exists(old) || !s.Exists(pinnedOld) || !s.Exists(recent) {
		t.Errorf("after prune: kept pinned %d; old %v pinned %v recent %v", rep.KeptPinned, s.Exists(old), s.Exists(pinnedOld), s.Exists(recent))
	}
	if rep.Freed <= 0 {
		t.Errorf("freed %d bytes", rep.Freed)
	}
}

func TestPruneAllDropsReferencesWithTheirManifests(t *testing.T) {
	s := testStore(t, cache.Options{})
	now := time.Now()
	l := layerOf(t, s, 1, 4096, now)
	imageWithLayers(t, s, "r/a:1", now, l)
	if _, err := Prune(s, PruneOptions{MaxSize: -1, Now: now}); err != nil {
		t.Fatal(err)
	}
	if !s.Exists(l) {
		t.Fatal("a prune with no flags removed a referenced blob")
	}
	rep, err := Prune(s, PruneOptions{All: true, MaxSize: -1, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Refs) != 1 || rep.Refs[0] != "r/a:1" || len(rep.Blobs) != 3 {
		t.Errorf("prune --all removed refs %v and %d blobs, want r/a:1 and 3", rep.Refs, len(rep.Blobs))
	}
	if _, err := s.LookupRef("r/a:1"); err == nil {
		t.Error("index.json still names r/a:1, whose manifest is gone")
	}
	inv, err := TakeInventory(s)
	if err != nil || len(inv.Blobs) != 0 {
		t.Errorf("inventory after prune --all: %+v, %v", inv.Blobs, err)
	}
}

func TestStalePinIsRemovedAndProtectsNothing(t *testing.T) {
	s := testStore(t, cache.Options{})
	now := time.Now()
	l := layerOf(t, s, 1, 4096, now.Add(-time.Hour))
	live, err := NewPin(s, nil, []digest.Digest{l.Digest})
	if err != nil {
		t.Fatal(err)
	}
	// A pin file no process holds, as a kill -9 leaves one.
	dir := filepath.Join(s.Root(), layout.Pins)
	os.MkdirAll(dir, 0o700)
	data, _ := json.Marshal(PinRecord{PID: 1, Digests: []digest.Digest{l.Digest}})
	stale := filepath.Join(dir, "1-dead.json")
	if err := os.WriteFile(stale, data, 0o600); err != nil {
		t.Fatal(err)
	}
	held, err := layout.Held(live.Path())
	if err != nil || !held {
		t.Fatalf("a live pin reads as not held: %v %v", held, err)
	}
	if _, err := os.Stat(stale); err != nil {
		t.Fatalf("the stale pin should stay until a prune looks: %v", err)
	}
	if rep, _ := Prune(s, PruneOptions{All: true, MaxSize: -1, Now: now}); len(rep.Blobs) != 0 {
		t.Fatalf("a live pin did not protect its blob: %+v", rep.Blobs)
	}
	live.Release()
	rep, err := Prune(s, PruneOptions{All: true, MaxSize: -1, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale pin still there: %v", err)
	}
	if len(rep.Blobs) != 1 || s.Exists(l) {
		t.Errorf("once its pins are released or stale, the blob should go: %+v", rep.Blobs)
	}
}

func TestUsageEqualsADirectoryWalk(t *testing.T) {
	s := testStore(t, cache.Options{})
	now := time.Now()
	imageWithLayers(t, s, "r/a:1", now, layerOf(t, s, 1, 100<<10, now))
	desc, f := testBlob(t, 256<<10)
	r, err := s.NewReader(desc, f)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	if _, err := r.ReadAt(context.Background(), buf, 0); err != nil {
		t.Fatal(err)
	}
	r.Close()
	waitClosed(t, s)
	fileCopyOf(t, s, desc, 0, bytes.Repeat([]byte{7}, 12<<10), now)
	u, err := DiskUsage(s)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	filepath.WalkDir(s.Root(), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			fi, _ := d.Info()
			total += layout.DiskBytes(fi)
		}
		return err
	})
	copies := 0
	filepath.WalkDir(filepath.Join(s.Root(), layout.Files), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			fi, _ := d.Info()
			copies += int(layout.DiskBytes(fi))
		}
		return err
	})
	if u.Total != total || u.Complete+u.Partial+u.Indexes+u.Files+u.Logs+u.Other != total || u.Partial == 0 || u.Complete == 0 ||
		u.Files == 0 || u.Files != int64(copies) {
		t.Errorf("usage %+v, walk %d", u, total)
	}
}

func TestCapEvictsLeastRecentlyUsedButNotOpenBlobs(t *testing.T) {
	s := testStore(t, cache.Options{})
	now := time.Now()
	a := layerOf(t, s, 1, 64<<10, now.Add(-3*time.Hour))
	b := layerOf(t, s, 2, 64<<10, now.Add(-2*time.Hour))
	c := layerOf(t, s, 3, 64<<10, now.Add(-time.Hour))
	open, err := s.OpenBlob(a, nil)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := DiskUsage(s)
	capOf(s).SetMaxSize(u.Capped()-1, CapOptions{})
	if !s.Exists(a) || s.Exists(b) || !s.Exists(c) {
		t.Errorf("cap evicted: a %v b %v c %v; want only b (a is open, c is recent)", !s.Exists(a), !s.Exists(b), !s.Exists(c))
	}
	if capOf(s).Evictions() != 1 {
		t.Errorf("evictions %d, want 1", capOf(s).Evictions())
	}
	open.Close()
}

func TestApplyKeepsWhatDependsOnABlobItCouldNotRemove(t *testing.T) {
	s := testStore(t, cache.Options{})
	now := time.Now()
	desc, f := testBlob(t, 256<<10)
	r, err := s.NewReader(desc, f)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadAt(context.Background(), make([]byte, 4096), 0); err != nil {
		t.Fatal(err)
	}
	r.Close()
	waitClosed(t, s)
	for _, suffix := range []string{".partial", ".state", ".lock"} {
		path, _ := layout.IngestPath(s.Root(), desc.Digest, desc.Size, suffix)
		os.Chtimes(path, now.Add(-3*time.Hour), now.Add(-3*time.Hour))
	}
	imageWithLayers(t, s, "r/a:1", now, desc)
	copyPath := fileCopyOf(t, s, desc, 0, bytes.Repeat([]byte{1}, 8192), now.Add(-time.Minute))

	u, _ := DiskUsage(s)
	plan, err := PlanPrune(s, PruneOptions{MaxSize: u.Capped() - 1, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	dry := plan.Report()
	if len(dry.Blobs) != 1 || dry.Blobs[0].Digest != desc.Digest || len(dry.FileCopies) != 1 || dry.FileCopies[0].Reason != ReasonWithLayer {
		t.Fatalf("the plan should take the partial and its copy with it: %+v, %+v", dry.Blobs, dry.FileCopies)
	}
	// The partial's writer is back before the plan is applied: the
	// partial cannot go, so neither does the copy that was to go with it.
	r, err = s.NewReader(desc, f)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rep, err := plan.Apply()
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Blobs) != 0 || len(rep.FileCopies) != 0 || !exists(copyPath) {
		t.Errorf("applied: blobs %+v, copies %+v; the copy is still there: %v", rep.Blobs, rep.FileCopies, exists(copyPath))
	}
}
