package artifacts

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache"
)

// countingPolicy stands in for cache/gc: it counts what it is told, and
// has room or not.
type countingPolicy struct {
	noRoom            bool
	opened, committed int
}

func (p *countingPolicy) Opening(ocispec.Descriptor) {}
func (p *countingPolicy) Committed()                 { p.committed++ }
func (p *countingPolicy) Opened(string)              { p.opened++ }
func (p *countingPolicy) Reserve(int64) error {
	if p.noRoom {
		return cache.ErrOverCap
	}
	return nil
}

func testStore(t *testing.T) *cache.Store {
	t.Helper()
	s, err := cache.Open(t.TempDir(), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestLayerIndexIsStoredOnlyForAVerifiedBlob(t *testing.T) {
	s := testStore(t)
	data := []byte("a layer")
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(data), Size: int64(len(data))}
	if err := WriteLayerIndex(s, desc, 1, []byte("index")); !errors.Is(err, cache.ErrBlobNotVerified) {
		t.Fatalf("an index of a blob not in the cache: %v, want ErrBlobNotVerified", err)
	}
	if err := s.Ingest(context.Background(), desc, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := WriteLayerIndex(s, desc, 1, []byte("index")); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := ReadLayerIndex(s, desc, 1); err != nil || !ok || string(got) != "index" {
		t.Errorf("ReadLayerIndex = %q, %v, %v", got, ok, err)
	}
	if _, ok, err := ReadLayerIndex(s, desc, 2); err != nil || ok {
		t.Errorf("another format version reads %v, %v; want none", ok, err)
	}
	if n := len(LayerIndexFiles(s)); n != 1 {
		t.Errorf("%d layer index files, want 1", n)
	}
}

func TestFileCopiesAskAndTellTheStorePolicy(t *testing.T) {
	s := testStore(t)
	p := &countingPolicy{}
	s.SetPolicy(p)
	layer := ocispec.Descriptor{Digest: digest.FromString("layer"), Size: 1000}
	c, err := NewFileCopy(s, layer, 1, 3, 5)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteAt([]byte("hello"), 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Commit(); err != nil || p.committed != 1 {
		t.Fatalf("Commit: %v; the policy was told of %d commits, want 1", err, p.committed)
	}
	if _, ok := OpenFileCopy(s, layer, 1, 3, 4); ok {
		t.Error("a copy of another size opens")
	}
	f, ok := OpenFileCopy(s, layer, 1, 3, 5)
	if !ok {
		t.Fatal("the copy does not open")
	}
	defer f.Close()
	if got, err := io.ReadAll(f); err != nil || string(got) != "hello" || p.opened != 1 {
		t.Errorf("the copy reads %q, %v; the policy was told of %d opens, want 1", got, err, p.opened)
	}
	if copies := ListFileCopies(s); len(copies) != 1 || copies[0].Layer != layer.Digest || copies[0].LayerSize != layer.Size {
		t.Errorf("ListFileCopies = %+v", copies)
	}

	p.noRoom = true
	if _, err := NewFileCopy(s, layer, 1, 4, 5); !errors.Is(err, cache.ErrOverCap) {
		t.Errorf("a copy the policy has no room for: %v, want ErrOverCap", err)
	}
}
