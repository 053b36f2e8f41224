package fetch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/oci"
)

// memStore is a Store that holds every blob already: a walk over it only
// decodes metadata, and it counts what the walk asks of it.
type memStore struct {
	mu      sync.Mutex
	meta    map[digest.Digest][]byte
	handled map[digest.Digest]int // Exists calls: one per descriptor handled
}

func newMemStore() *memStore {
	return &memStore{meta: map[digest.Digest][]byte{}, handled: map[digest.Digest]int{}}
}

func (s *memStore) Exists(desc ocispec.Descriptor) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handled[desc.Digest]++
	return true
}

func (s *memStore) ReadMetadata(_ context.Context, desc ocispec.Descriptor) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, ok := s.meta[desc.Digest]
	if !ok {
		return nil, errors.New("missing " + desc.Digest.String())
	}
	return data, nil
}

func (s *memStore) Fill(context.Context, ocispec.Descriptor, blobio.Fetcher, func(int64)) error {
	return errors.New("memStore holds everything")
}

func (s *memStore) Ingest(context.Context, ocispec.Descriptor, io.Reader) error {
	return errors.New("memStore holds everything")
}

func (s *memStore) AddSource(digest.Digest, string) error { return nil }

// calls returns how many descriptors were handled in all, and the most
// times any one digest was.
func (s *memStore) calls() (total, most int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.handled {
		total += n
		most = max(most, n)
	}
	return total, most
}

// put stores v as JSON metadata and returns its descriptor.
func (s *memStore) put(mediaType string, v any) ocispec.Descriptor {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	d := digest.FromBytes(data)
	s.mu.Lock()
	s.meta[d] = data
	s.mu.Unlock()
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
}

func (s *memStore) index(manifests ...ocispec.Descriptor) ocispec.Descriptor {
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: manifests}
	idx.SchemaVersion = 2
	return s.put(ocispec.MediaTypeImageIndex, idx)
}

func (s *memStore) manifest(config ocispec.Descriptor, layers ...ocispec.Descriptor) ocispec.Descriptor {
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: config, Layers: layers}
	m.SchemaVersion = 2
	return s.put(ocispec.MediaTypeImageManifest, m)
}

func (s *memStore) image(name string) ocispec.Descriptor {
	return s.manifest(s.put(ocispec.MediaTypeImageConfig, map[string]string{"name": name}), testLayer(name))
}

func testLayer(name string) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString(name), Size: int64(len(name))}
}

// chain returns an index n levels deep, each level listing the next
// `width` times, with leaf at the bottom.
func (s *memStore) chain(n, width int, leaf ocispec.Descriptor) ocispec.Descriptor {
	d := leaf
	for range n {
		entries := make([]ocispec.Descriptor, width)
		for i := range entries {
			entries[i] = d
		}
		d = s.index(entries...)
	}
	return d
}

func walkAll(s *memStore, root ocispec.Descriptor) (*Tree, error) {
	return Walk(context.Background(), s, Origin{Root: root, Repository: "test/repo"}, WalkOptions{AllPlatforms: true, MaxConcurrent: 4})
}

func TestWalkVisitsEachDigestOnce(t *testing.T) {
	tests := []struct {
		name        string
		build       func(s *memStore) ocispec.Descriptor
		wantDigests int
	}{
		{"index with 20 000 identical entries", func(s *memStore) ocispec.Descriptor {
			m := s.image("one")
			entries := make([]ocispec.Descriptor, 20_000)
			for i := range entries {
				entries[i] = m
			}
			return s.index(entries...)
		}, 4},
		{"manifests sharing config and layers", func(s *memStore) ocispec.Descriptor {
			config := s.put(ocispec.MediaTypeImageConfig, map[string]string{})
			a := s.manifest(config, testLayer("shared"), testLayer("a"))
			b := s.manifest(config, testLayer("shared"), testLayer("b"))
			return s.index(a, b, a)
		}, 7},
		{"a layer listed twice", func(s *memStore) ocispec.Descriptor {
			config := s.put(ocispec.MediaTypeImageConfig, map[string]string{})
			return s.manifest(config, testLayer("x"), testLayer("x"), testLayer("y"))
		}, 4},
		{"six indexes each listing the next twice", func(s *memStore) ocispec.Descriptor {
			return s.chain(6, 2, s.image("leaf"))
		}, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newMemStore()
			root := tt.build(s)
			tree, err := walkAll(s, root)
			if err != nil {
				t.Fatal(err)
			}
			total, most := s.calls()
			if most != 1 || total != tt.wantDigests {
				t.Errorf("handled %d descriptors, one digest %d times; want %d, each once", total, most, tt.wantDigests)
			}
			if got := len(tree.Descriptors()); got != tt.wantDigests {
				t.Errorf("tree holds %d descriptors, want %d", got, tt.wantDigests)
			}
		})
	}
}

func TestWalkVisitsEachDigestOnceKeepsEveryEntryInTheTree(t *testing.T) {
	s := newMemStore()
	m := s.image("one")
	entries := make([]ocispec.Descriptor, 20_000)
	for i := range entries {
		entries[i] = m
	}
	root := s.index(entries...)
	tree, err := walkAll(s, root)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tree.Children(root.Digest)); n != len(entries) {
		t.Errorf("tree records %d children of the index, want all %d", n, len(entries))
	}
	if n := len(tree.Children(m.Digest)); n != 2 {
		t.Errorf("tree records %d children of the manifest, want config and layer", n)
	}
}

func TestWalkDAGBombEndsAtOnce(t *testing.T) {
	s := newMemStore()
	root := s.chain(40, 2, s.image("leaf")) // 2^40 paths to the leaf
	_, err := walkAll(s, root)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("MaxWalkDepth (%d)", MaxWalkDepth)) {
		t.Fatalf("Walk = %v, want an error naming MaxWalkDepth", err)
	}
	total, most := s.calls()
	if most != 1 || total > MaxWalkDepth+1 {
		t.Errorf("handled %d descriptors, one digest %d times; want at most %d, each once", total, most, MaxWalkDepth+1)
	}
}

func TestWalkBounds(t *testing.T) {
	distinct := func(s *memStore, n int) ocispec.Descriptor {
		entries := make([]ocispec.Descriptor, n)
		for i := range entries {
			entries[i] = testLayer(fmt.Sprint(i))
		}
		return s.index(entries...)
	}
	tests := []struct {
		name    string
		build   func(s *memStore) ocispec.Descriptor
		wantErr string // "" for success
	}{
		// A chain of n indexes puts the manifest at depth n and its layer
		// at n+1.
		{"deepest allowed", func(s *memStore) ocispec.Descriptor {
			return s.chain(MaxWalkDepth-1, 1, s.image("leaf"))
		}, ""},
		{"one level deeper", func(s *memStore) ocispec.Descriptor {
			return s.chain(MaxWalkDepth, 1, s.image("leaf"))
		}, fmt.Sprintf("image nested deeper than MaxWalkDepth (%d)", MaxWalkDepth)},
		{"most descriptors allowed", func(s *memStore) ocispec.Descriptor {
			return distinct(s, MaxWalkDescriptors-1)
		}, ""},
		{"one descriptor more", func(s *memStore) ocispec.Descriptor {
			return distinct(s, MaxWalkDescriptors)
		}, fmt.Sprintf("more than MaxWalkDescriptors (%d) distinct descriptors", MaxWalkDescriptors)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newMemStore()
			_, err := walkAll(s, tt.build(s))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Walk = %v, want success", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Walk = %v, want an error saying %q", err, tt.wantErr)
			case tt.wantErr != "" && strings.Contains(err.Error(), "\n"):
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

func TestWalkValidatesRoot(t *testing.T) {
	s := newMemStore()
	root := s.image("x")
	root.Digest = "sha256:../../../etc/passwd"
	if _, err := walkAll(s, root); !errors.Is(err, oci.ErrInvalidDigest) {
		t.Fatalf("Walk = %v, want ErrInvalidDigest", err)
	}
	if total, _ := s.calls(); total != 0 {
		t.Errorf("the store was asked about %d descriptors of an invalid root", total)
	}
}
