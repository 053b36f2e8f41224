package imagemount

import (
	"context"
	"errors"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/fetch"
	"github.com/imgfs/imgfs/fusefs"
	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/oci"
)

// The cache is where the walk stores what it reaches.
var _ fetch.Store = (*cache.Store)(nil)

// ErrNotCached means a mount without a remote found the image, or part of
// its metadata, missing from the cache.
var ErrNotCached = errors.New("not in the cache")

// resolve walks the image's metadata into the cache through the same
// handler chain as fetch, leaving layers lazy, and builds the image the
// filesystem shows. Without a remote, everything must already be in the
// cache.
func resolve(ctx context.Context, store *cache.Store, o Options) (fusefs.Image, error) {
	ref, ps, offline := o.Ref, o.Platforms, o.Remote == nil
	opts := fetch.WalkOptions{
		Platforms:     ps,
		AllPlatforms:  o.AllPlatforms,
		Lazy:          []oci.Kind{oci.KindLayer, oci.KindConfig},
		Limit:         max(len(ps), 1),
		MaxConcurrent: 32,
	}
	var (
		root ocispec.Descriptor
		data []byte
		src  blobio.Fetcher = o.Remote
	)
	if offline {
		var err error
		if root, err = store.LookupRef(ref.String()); err != nil {
			if errors.Is(err, cache.ErrRefNotFound) {
				return fusefs.Image{}, fmt.Errorf("%s: %w %s", ref, ErrNotCached, store.Root())
			}
			return fusefs.Image{}, err
		}
		if data, err = store.ReadMetadata(ctx, root); err != nil {
			return fusefs.Image{}, fmt.Errorf("%s: %w: %w", ref, ErrNotCached, err)
		}
		src = offlineFetcher{}
	} else {
		var err error
		if root, data, err = o.Remote.Resolve(ctx); err != nil {
			return fusefs.Image{}, err
		}
	}
	tree, err := fetch.Walk(ctx, store, fetch.Origin{Root: root, RootData: data, Fetcher: src, Repository: ref.Name()}, opts)
	if err != nil {
		if offline {
			return fusefs.Image{}, fmt.Errorf("metadata of %s: %w: %w", ref, ErrNotCached, err)
		}
		return fusefs.Image{}, err
	}
	if !offline {
		if err := store.SetRef(ref.String(), root, nil); err != nil {
			return fusefs.Image{}, err
		}
	}
	fetchConfig := fetch.FetchHandler(store, src, ref.Name(), nil)
	img, err := buildImage(ctx, store, ref, tree, ps, func(ctx context.Context, desc ocispec.Descriptor) error {
		_, err := fetchConfig(ctx, desc)
		return err
	})
	if err == nil {
		img, err = withOCIView(ctx, store, img)
	}
	if err != nil && offline {
		err = fmt.Errorf("metadata of %s: %w: %w", ref, ErrNotCached, err)
	}
	return img, err
}
