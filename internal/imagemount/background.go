package imagemount

import (
	"context"
	"log/slog"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/fetch"
	"github.com/imgfs/imgfs/fusefs"
	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/oci"
)

// fetchConfigs fetches, after the mount is up, the configs the walk left
// lazy: metadata is eager, but only one config is needed to be ready.
// Until one lands, a read of it is served lazily like a layer.
func fetchConfigs(ctx context.Context, store *cache.Store, src blobio.Fetcher, source string, img fusefs.Image, log *slog.Logger) {
	handler := fetch.FetchHandler(store, src, source, nil)
	var configs []ocispec.Descriptor
	for _, p := range img.Platforms {
		configs = append(configs, p.Config)
	}
	fillInBackground(ctx, store, log, "config", configs, func(ctx context.Context, desc ocispec.Descriptor) error {
		_, err := handler(ctx, desc)
		return err
	})
}

// prefetchLayers fills every layer of the mount in the background. The
// cache bounds it to a few connections, so reads keep priority.
func prefetchLayers(ctx context.Context, store *cache.Store, fetcher blobio.Fetcher, img fusefs.Image, log *slog.Logger) {
	var layers []ocispec.Descriptor
	for _, desc := range img.Blobs {
		if !oci.IsMetadata(desc) {
			layers = append(layers, desc)
		}
	}
	fillInBackground(ctx, store, log, "layer", layers, func(ctx context.Context, desc ocispec.Descriptor) error {
		return store.Prefetch(ctx, desc, fetcher)
	})
}

// backgroundFills bounds the blobs filled in the background at once, so
// that the goroutine count does not grow with the number of blobs an image
// lists. The cache bounds the connections they use.
const backgroundFills = 4

// fillInBackground runs fill on every blob the cache lacks, a few at a
// time, and logs the outcome; a failure leaves the blob lazy, nothing
// worse.
func fillInBackground(ctx context.Context, store *cache.Store, log *slog.Logger, kind string, descs []ocispec.Descriptor, fill func(context.Context, ocispec.Descriptor) error) {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, backgroundFills)
	for _, desc := range descs {
		if store.Exists(desc) {
			continue
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := fill(ctx, desc); err != nil {
				log.Warn("background fetch failed; the "+kind+" stays lazy", "digest", desc.Digest, "error", err)
				return
			}
			log.Debug("fetched in the background", "kind", kind, "digest", desc.Digest, "size", desc.Size)
		})
	}
}
