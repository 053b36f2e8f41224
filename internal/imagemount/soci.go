package imagemount

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/fetch"
	"github.com/imgfs/imgfs/fusefs"
	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/oci"
	"github.com/imgfs/imgfs/internal/soci"
)

// IndexMode says which layer indexes published in the registry a mount
// looks for before it indexes a gzip layer with a pass of its own.
type IndexMode int

const (
	// IndexAuto reads a SOCI v2 index bound into the image, else a SOCI
	// v1 index among the image manifest's referrers; the latter is bound
	// to nothing, so cache.VerifyStrict never looks for one.
	IndexAuto IndexMode = iota
	// IndexNone looks for none: a gzip layer is indexed from the cache's
	// stored index or by a pass.
	IndexNone
)

// ParseIndexMode parses the --index flag's value.
func ParseIndexMode(s string) (IndexMode, error) {
	switch s {
	case "auto", "":
		return IndexAuto, nil
	case "none":
		return IndexNone, nil
	}
	return 0, fmt.Errorf("unknown index mode %q: want auto or none", s)
}

// sharedZtoc is a layer's zTOC as a SOCI index in the registry lists it.
type sharedZtoc struct {
	ztoc    soci.Ztoc
	index   ocispec.Descriptor // the SOCI index manifest
	version soci.Version
	// bound says the index was reached through digests from the user's
	// reference (v2), and is as trusted as the image.
	bound bool
}

// source names where the layer's index came from, for stats.json.
func (z sharedZtoc) source() string { return "soci-" + z.version.String() }

// sociFinder finds the SOCI zTOCs of an image's layers: first the v2 index
// a SOCI-enabled image manifest names, then, when unbound indexes are
// allowed, a v1 index among the manifest's referrers. Each manifest is
// looked up once, when the first of its layers needs an index; a lookup
// that fails on the registry is tried again by the next layer.
type sociFinder struct {
	store   *cache.Store
	remote  *fetch.Remote
	fetch   fetch.HandlerFunc // the SOCI manifests and zTOCs, into the cache
	root    ocispec.Descriptor
	owners  map[digest.Digest][]ocispec.Descriptor // layer -> manifests listing it
	unbound bool                                   // look up v1 referrers
	log     *slog.Logger

	mu      sync.Mutex
	lookups map[digest.Digest]*sociLookup
}

// sociLookup is the lookup of one image manifest's SOCI index.
type sociLookup struct {
	done  chan struct{}
	index *soci.Index
	found sharedZtoc // index and version; ztoc unset
	err   error
}

func newSOCIFinder(store *cache.Store, remote *fetch.Remote, fetcher blobio.Fetcher, root ocispec.Descriptor, owners map[digest.Digest][]ocispec.Descriptor, unbound bool, log *slog.Logger) *sociFinder {
	return &sociFinder{
		store: store, remote: remote, root: root, owners: owners, unbound: unbound, log: log,
		fetch:   fetch.FetchHandler(store, fetcher, remote.Reference().Name(), nil),
		lookups: map[digest.Digest]*sociLookup{},
	}
}

// layerOwners maps each layer of img to the manifests that list it.
func layerOwners(img fusefs.Image) map[digest.Digest][]ocispec.Descriptor {
	owners := map[digest.Digest][]ocispec.Descriptor{}
	for _, p := range img.Platforms {
		for _, l := range p.Layers {
			owners[l.Digest] = append(owners[l.Digest], p.Manifest)
		}
	}
	return owners
}

// find returns the zTOC a SOCI index of one of the manifests that list
// layer has for it.
func (f *sociFinder) find(ctx context.Context, layer ocispec.Descriptor) (sharedZtoc, bool) {
	for _, m := range f.owners[layer.Digest] {
		l := f.lookup(ctx, m)
		if l.err != nil || l.index == nil {
			continue
		}
		if z, ok := l.index.For(layer.Digest); ok {
			found := l.found
			found.ztoc = z
			return found, true
		}
	}
	return sharedZtoc{}, false
}

func (f *sociFinder) lookup(ctx context.Context, manifest ocispec.Descriptor) *sociLookup {
	f.mu.Lock()
	l := f.lookups[manifest.Digest]
	if l != nil {
		f.mu.Unlock()
		select {
		case <-l.done:
			return l
		case <-ctx.Done():
			return &sociLookup{err: ctx.Err()}
		}
	}
	// The first layer to ask looks up; the others wait for its answer.
	l = &sociLookup{done: make(chan struct{})}
	f.lookups[manifest.Digest] = l
	f.mu.Unlock()
	l.index, l.found, l.err = f.discover(ctx, manifest)
	if l.err != nil {
		f.log.Warn("SOCI index lookup failed; tried again for the next layer", "manifest", manifest.Digest, "err", l.err)
		f.mu.Lock()
		delete(f.lookups, manifest.Digest)
		f.mu.Unlock()
	}
	close(l.done)
	return l
}

// discover finds manifest's SOCI index. A v2 index that its image names
// but that cannot be read is logged and passed over, as is a v1 index that
// does not parse or names another subject: the layer then has a pass, as
// with no index. Only a registry that fails to answer is an error.
func (f *sociFinder) discover(ctx context.Context, manifest ocispec.Descriptor) (*soci.Index, sharedZtoc, error) {
	data, err := f.store.ReadMetadata(ctx, manifest)
	if err != nil {
		return nil, sharedZtoc{}, err
	}
	if d, ok, err := soci.BoundIndex(data); err != nil {
		f.log.Warn("SOCI index annotation ignored", "manifest", manifest.Digest, "err", err)
	} else if ok {
		x, desc, err := f.boundIndex(ctx, d)
		if err == nil {
			f.log.Info("SOCI v2 index found", "manifest", manifest.Digest, "index", desc.Digest, "ztocs", len(x.Ztocs))
			return x, sharedZtoc{index: desc, version: soci.V2, bound: true}, nil
		}
		f.log.Warn("SOCI v2 index unusable; its layers are indexed by a pass", "manifest", manifest.Digest, "index", d, "err", err)
	}
	if !f.unbound {
		return nil, sharedZtoc{}, nil
	}
	refs, err := f.remote.Referrers(ctx, manifest, soci.ArtifactTypeV1)
	if err != nil {
		return nil, sharedZtoc{}, fmt.Errorf("referrers: %w", err)
	}
	// The last listed is the newest where the registry keeps push order
	// (the fallback tag's index); SOCI's snapshotter also picks one.
	for i := len(refs) - 1; i >= 0; i-- {
		x, err := f.readIndex(ctx, refs[i])
		if err == nil && (x.Version != soci.V1 || x.Subject == nil || x.Subject.Digest != manifest.Digest) {
			err = fmt.Errorf("a SOCI %s index whose subject is not %s", x.Version, manifest.Digest)
		}
		if err != nil {
			f.log.Warn("SOCI v1 index refused", "manifest", manifest.Digest, "index", refs[i].Digest, "err", err)
			continue
		}
		f.log.Info("SOCI v1 index found among the referrers; bound to nothing, so its spans are checked and it is cross-checked once a layer is verified",
			"manifest", manifest.Digest, "index", refs[i].Digest, "ztocs", len(x.Ztocs))
		return x, sharedZtoc{index: refs[i], version: soci.V1}, nil
	}
	return nil, sharedZtoc{}, nil
}

// boundIndex reads the v2 index d that an image manifest names, at the
// size the image index lists it with.
func (f *sociFinder) boundIndex(ctx context.Context, d digest.Digest) (*soci.Index, ocispec.Descriptor, error) {
	if !oci.IsIndex(f.root.MediaType) {
		return nil, ocispec.Descriptor{}, fmt.Errorf("the image has no image index to list it")
	}
	data, err := f.store.ReadMetadata(ctx, f.root)
	if err != nil {
		return nil, ocispec.Descriptor{}, err
	}
	children, err := fetch.Children(f.root, data)
	if err != nil {
		return nil, ocispec.Descriptor{}, err
	}
	desc, ok := soci.Listed(children, d)
	if !ok {
		return nil, ocispec.Descriptor{}, fmt.Errorf("the image index does not list it")
	}
	x, err := f.readIndex(ctx, desc)
	if err == nil && x.Version != soci.V2 {
		err = fmt.Errorf("a SOCI %s index, not v2", x.Version)
	}
	return x, desc, err
}

// readIndex fetches a SOCI index manifest into the cache, verified, and
// parses it.
func (f *sociFinder) readIndex(ctx context.Context, desc ocispec.Descriptor) (*soci.Index, error) {
	if _, err := f.fetch(ctx, desc); err != nil {
		return nil, err
	}
	data, err := f.store.ReadMetadata(ctx, desc)
	if err != nil {
		return nil, err
	}
	return soci.Parse(data)
}

// readZtoc fetches a zTOC into the cache, verified, and reads it.
func (f *sociFinder) readZtoc(ctx context.Context, z soci.Ztoc) ([]byte, error) {
	if _, err := f.fetch(ctx, z.Desc); err != nil {
		return nil, err
	}
	path, ok := f.store.CompletePath(z.Desc)
	if !ok {
		return nil, fmt.Errorf("zTOC %s: not in the cache after its fetch", z.Desc.Digest)
	}
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	// Parse bounded the size at soci.MaxZtocSize.
	data, err := io.ReadAll(io.LimitReader(file, z.Desc.Size))
	if err == nil && int64(len(data)) != z.Desc.Size {
		err = fmt.Errorf("zTOC %s: %d bytes in the cache, want %d", z.Desc.Digest, len(data), z.Desc.Size)
	}
	return data, err
}
