package gc

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache"
)

// memFetcher serves one blob from memory, standing in for the registry as
// the engine's tests do.
type memFetcher struct {
	data []byte
}

func (m *memFetcher) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	return m.FetchRange(ctx, desc, 0, int64(len(m.data)))
}

func (m *memFetcher) FetchRange(_ context.Context, _ ocispec.Descriptor, off, n int64) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(m.data[off : off+n])), nil
}

func testBlob(t *testing.T, size int) (ocispec.Descriptor, *memFetcher) {
	data := make([]byte, size)
	rng := rand.New(rand.NewPCG(uint64(size), 7))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(data), Size: int64(size)}
	return desc, &memFetcher{data: data}
}

// testStore opens a store with the LRU policy, as imgfs does, so that
// opens note their use, and closes it when the test ends.
func testStore(t *testing.T, opts cache.Options) *cache.Store {
	t.Helper()
	if opts.ChunkSize == 0 {
		opts.ChunkSize = 64 << 10
	}
	s, err := cache.Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	s.SetPolicy(NewLRU(s))
	t.Cleanup(func() { s.Close() })
	return s
}

// capOf is the LRU policy testStore gave s.
func capOf(s *cache.Store) *LRU { return s.Policy().(*LRU) }

// waitClosed waits for background fetches to let go of every blob, which
// is when their state is saved.
func waitClosed(t *testing.T, s *cache.Store) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().OpenBlobs != 0 {
		if time.Now().After(deadline) {
			t.Fatal("blobs still open")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
