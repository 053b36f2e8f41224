package imagemount

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/cache/gc"
	"github.com/imgfs/imgfs/fetch"
	"github.com/imgfs/imgfs/internal/testfuse"
	"github.com/imgfs/imgfs/internal/testregistry"
)

// TestStartServesAnImage mounts an image from a real registry in this
// process, with no binary in between, as another program would: the
// layout and a file in rootfs/ read back as pushed, the stats count what
// was fetched, and Close leaves the cache unpinned.
func TestStartServesAnImage(t *testing.T) {
	testfuse.Require(t)
	reg := testregistry.Start(t)
	pushed, err := reg.PushImage("three/oci", "v1", testregistry.ThreeLayerImage(false))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := fetch.ParseReference(reg.Reference("three/oci", "v1"))
	if err != nil {
		t.Fatal(err)
	}
	remote, err := fetch.NewRemote(ref, fetch.RemoteOptions{TransportOptions: fetch.TransportOptions{PlainHTTP: true}})
	if err != nil {
		t.Fatal(err)
	}
	store, err := cache.Open(t.TempDir(), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	mnt := t.TempDir()
	m, err := Start(context.Background(), store, mnt, Options{Ref: ref, Remote: remote})
	if err != nil {
		t.Fatal(err)
	}
	unmounted := false
	defer func() {
		if !unmounted {
			m.Unmount()
			m.Wait()
		}
		m.Close()
	}()

	if got := m.Image().Platforms[0].Manifest.Digest; got != pushed.Manifest.Digest {
		t.Errorf("the mount's manifest is %s, pushed %s", got, pushed.Manifest.Digest)
	}
	got, err := os.ReadFile(filepath.Join(mnt, "manifest.json"))
	if err != nil || !bytes.Equal(got, pushed.ManifestBytes) {
		t.Errorf("manifest.json reads %d bytes (%v), want the %d pushed", len(got), err, len(pushed.ManifestBytes))
	}
	small, err := os.ReadFile(filepath.Join(mnt, "rootfs", "data", "small.bin"))
	if err != nil || len(small) != testregistry.SmallSize {
		t.Fatalf("rootfs/data/small.bin: %d bytes, %v; want %d", len(small), err, testregistry.SmallSize)
	}
	want, _ := io.ReadAll(io.LimitReader(testregistry.RandomBytes(1, testregistry.SmallSize), testregistry.SmallSize))
	if !bytes.Equal(small, want) {
		t.Error("rootfs/data/small.bin differs from the file pushed")
	}

	st := m.Stats()
	if st.FetchedBytes == 0 || len(st.Blobs) != len(m.Image().Blobs) {
		t.Errorf("stats: %d bytes fetched, %d blob rows for %d blobs", st.FetchedBytes, len(st.Blobs), len(m.Image().Blobs))
	}
	var fromFile struct {
		Cache Stats `json:"cache"`
	}
	data, err := os.ReadFile(filepath.Join(mnt, ".imgfs", "stats.json"))
	if err != nil || json.Unmarshal(data, &fromFile) != nil || fromFile.Cache.FetchedBytes < st.FetchedBytes {
		t.Errorf(".imgfs/stats.json does not carry the mount's stats: %v\n%s", err, data)
	}

	if err := m.Unmount(); err != nil {
		t.Fatal(err)
	}
	m.Wait()
	unmounted = true
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	pins, err := gc.LivePins(store)
	if err != nil || len(pins) != 0 {
		t.Errorf("after Close, %d live pins (%v), want none", len(pins), err)
	}
}
