package imagemount

import (
	"context"
	"log/slog"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/cache/gc"
	"github.com/imgfs/imgfs/fetch"
	"github.com/imgfs/imgfs/fusefs"
	"github.com/imgfs/imgfs/internal/oci"
)

// housekeeping is what a mount does for its operator: a pin on the blobs
// it may read, so that prune in any process leaves them; the cache cap;
// and the count of FUSE reads per blob for .imgfs/stats.json.
type housekeeping struct {
	store   *cache.Store
	img     fusefs.Image
	pin     *gc.Pin
	lru     *gc.LRU
	log     *slog.Logger
	reads   map[digest.Digest]*atomic.Int64 // FUSE reads per blob; read-only map
	maxSize int64
}

// startHousekeeping pins img's blobs and applies the cap of maxSize bytes
// (0: none) through lru. The mount's own pin does not keep its blobs from
// eviction, since it fetches again what the cap evicts; a mount that
// cannot (offline) keeps them.
func startHousekeeping(store *cache.Store, lru *gc.LRU, ref fetch.Reference, img fusefs.Image, maxSize int64, offline bool, log *slog.Logger) (*housekeeping, error) {
	h := &housekeeping{store: store, lru: lru, img: img, log: log, reads: map[digest.Digest]*atomic.Int64{}, maxSize: maxSize}
	digests := []digest.Digest{img.Root.Digest}
	if img.RegistryRoot != nil {
		digests = append(digests, img.RegistryRoot.Digest)
	}
	for _, d := range img.Blobs {
		digests = append(digests, d.Digest)
		h.reads[d.Digest] = new(atomic.Int64)
	}
	var err error
	if h.pin, err = gc.NewPin(store, []string{ref.String()}, validDigests(digests)); err != nil {
		return nil, err
	}
	if maxSize > 0 {
		var opts gc.CapOptions
		if !offline {
			opts.OwnPins = []*gc.Pin{h.pin}
		}
		lru.SetMaxSize(maxSize, opts)
	}
	return h, nil
}

// validDigests drops digests the cache would refuse, such as an OCI view's
// synthesized root that the cache never holds.
func validDigests(ds []digest.Digest) []digest.Digest {
	out := ds[:0]
	for _, d := range ds {
		if oci.CheckDigest(d) == nil {
			out = append(out, d)
		}
	}
	return out
}

func (h *housekeeping) close() {
	if err := h.pin.Release(); err != nil {
		h.log.Warn("releasing the mount's pin", "error", err)
	}
}

// blobs wraps the mount's blob source: reads are counted per blob, and a
// passthrough open, which the cache never sees, still notes the blob's use.
func (h *housekeeping) blobs(b fusefs.Blobs) fusefs.Blobs { return opsBlobs{b, h} }

type opsBlobs struct {
	fusefs.Blobs
	h *housekeeping
}

func (b opsBlobs) Open(desc ocispec.Descriptor) (fusefs.BlobReader, error) {
	r, err := b.Blobs.Open(desc)
	if err != nil {
		return nil, err
	}
	if n := b.h.reads[desc.Digest]; n != nil {
		return countedReader{r, n}, nil
	}
	return r, nil
}

func (b opsBlobs) CompletePath(desc ocispec.Descriptor) (string, bool) {
	path, ok := b.Blobs.CompletePath(desc)
	if ok {
		gc.NoteUse(b.h.store, desc)
	}
	return path, ok
}

type countedReader struct {
	fusefs.BlobReader
	n *atomic.Int64
}

func (r countedReader) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	r.n.Add(1)
	return r.BlobReader.ReadAt(ctx, p, off)
}

// ReadLend lends where the wrapped reader can.
func (r countedReader) ReadLend(ctx context.Context, p []byte, off int64) ([][]byte, func(), int, error) {
	if l, ok := r.BlobReader.(fusefs.LendingReader); ok {
		r.n.Add(1)
		return l.ReadLend(ctx, p, off)
	}
	n, err := r.ReadAt(ctx, p, off)
	return nil, nil, n, err
}
