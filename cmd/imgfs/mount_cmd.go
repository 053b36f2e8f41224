package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/fetch"
	"github.com/imgfs/imgfs/fusefs"
	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/oci"
)

type mountFlags struct {
	registryFlags
	cacheOptions
	background     bool
	offline        bool
	noPassthrough  bool
	debugFUSE      bool
	logFile        string
	prefetch       bool
	allowOther     bool
	verify         string
	metricsAddress string
}

func newMountCommand(g *globalFlags) *cobra.Command {
	f := &mountFlags{}
	cmd := &cobra.Command{
		Use:   "mount [flags] <ref> <mountpoint>",
		Short: "Mount an image read-only as an OCI image layout, fetching layers lazily",
		Long: `Mount resolves <ref>, fetches its index, manifests and configs, and mounts
a read-only OCI image layout at <mountpoint>. Layer bytes are fetched from the
registry with range requests when first read, kept in the cache, and
committed there once the whole layer is verified.

Only the mounting user can read the mount unless --allow-other is given.

It runs in the foreground until SIGINT or SIGTERM, then unmounts. With
--background it returns once the mount is ready; stop it with imgfs unmount.`,
		Args: exactArgs("ref", "mountpoint"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMount(cmd, g, f, args[0], args[1])
		},
	}
	f.registryFlags.register(cmd.Flags())
	f.cacheOptions.register(cmd.Flags())
	cmd.Flags().BoolVarP(&f.background, "background", "d", false, "return once the mount is ready, leaving the server running")
	cmd.Flags().BoolVar(&f.offline, "offline", false, "mount from the cache alone; reads of bytes not cached fail with EIO")
	cmd.Flags().BoolVar(&f.noPassthrough, "no-passthrough", false, "never hand complete blobs to the kernel (FUSE passthrough)")
	cmd.Flags().BoolVar(&f.prefetch, "prefetch", false, "fetch whole layers in the background after mounting; reads take priority")
	cmd.Flags().BoolVar(&f.allowOther, "allow-other", false, "let every local user read the mount (allow_other), including images pulled with your credentials")
	cmd.Flags().StringVar(&f.verify, "verify", "lazy", "`lazy`: serve bytes as they arrive, the read that ends a blob waits for its digest; strict: serve nothing of a blob until it is verified")
	cmd.Flags().BoolVar(&f.debugFUSE, "debug-fuse", false, "log every FUSE request")
	cmd.Flags().StringVar(&f.logFile, "log-file", "", "write logs to `file` (default with --background: <cache-dir>/logs/mount-<pid>.log)")
	cmd.Flags().StringVar(&f.metricsAddress, "metrics-address", "", "serve Prometheus metrics at http://`ADDR`/metrics (host:port)")
	return cmd
}

// runMount mounts the image and serves it until a signal, which cancels
// the command's context (see main), or an unmount from outside. A signal
// during set-up cancels the metadata fetch and mounts nothing; one after
// mounting unmounts.
func runMount(cmd *cobra.Command, g *globalFlags, f *mountFlags, refArg, mountpoint string) (err error) {
	defer func() {
		if err != nil {
			signalReady(err) // a waiting parent prints it
		}
	}()
	ctx := cmd.Context()
	ref, err := fetch.ParseReference(refArg)
	if err != nil {
		return usageError{err}
	}
	ps, err := f.parsePlatforms()
	if err != nil {
		return err
	}
	opts := f.cacheOptions.options()
	if opts.Verify, err = cache.ParseVerifyMode(f.verify); err != nil {
		return usageError{fmt.Errorf("--verify: %w", err)}
	}
	if err := fusefs.CheckFuseDevice(); err != nil {
		return err
	}
	if err := fusefs.CheckMountpoint(mountpoint); err != nil {
		return err
	}
	if f.background && !isBackgroundChild() {
		return startBackground(cmd, g, f)
	}
	if err := g.redirectLogs(f.logFile); err != nil {
		return err
	}
	store, lru, err := g.openCache(opts)
	if err != nil {
		return err
	}
	defer store.Close()

	img, fetcher, err := resolveForMount(ctx, g, f, store, ref, ps)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("fetching the metadata of %s stopped; nothing was mounted", ref)
	}
	if err != nil {
		return err
	}
	ops, fetcher, err := startMountOps(g, f, store, lru, ref, img, fetcher) // pin, cap, metrics (mount_ops.go)
	if err != nil {
		return err
	}
	defer ops.close()
	files := newLayerFiles(store, fetcher, g.logger)
	img.Files = files
	server, err := fusefs.Mount(mountpoint, img, ops.blobs(blobSource{store: store, fetcher: fetcher}), fusefs.Options{
		FsName:      ref.String(),
		Logger:      g.logger,
		Debug:       f.debugFUSE,
		Passthrough: !f.noPassthrough,
		AllowOther:  f.allowOther,
		ExtraStats:  func() any { return ops.stats(withViewStats{store.Stats(), files.Stats()}) },
	})
	if err != nil {
		return err
	}
	ops.mounted(server)
	store.OnMismatch(server.InvalidateBlob)
	g.logger.Info("mounted", "ref", ref.String(), "mountpoint", mountpoint, "platforms", describePlatforms(img), "offline", f.offline, "verify", f.verify)
	signalReady(nil)

	var background sync.WaitGroup
	defer waitBackground(&background)
	if fetcher != nil {
		inBackground(g, store, &background, func(ctx context.Context) { fetchConfigs(ctx, g, store, fetcher, ref.Name(), img) })
		if f.prefetch {
			inBackground(g, store, &background, func(ctx context.Context) { prefetchLayers(ctx, g, store, fetcher, img) })
		}
	}

	unmounted := make(chan struct{})
	go func() { server.Wait(); close(unmounted) }()
	select {
	case <-ctx.Done():
		g.logger.Info("unmounting", "reason", "signal", "mountpoint", mountpoint)
		if err := server.Unmount(); err != nil {
			return fmt.Errorf("unmount %s: %w", mountpoint, err)
		}
		<-unmounted
	case <-unmounted: // unmounted from outside (imgfs unmount, umount)
	}
	return nil
}

// resolveForMount walks the image's metadata into the cache through the
// same handler chain as fetch, leaving layers lazy. Offline, everything
// must already be in the cache.
func resolveForMount(ctx context.Context, g *globalFlags, f *mountFlags, store *cache.Store, ref fetch.Reference, ps []ocispec.Platform) (fusefs.Image, blobio.Fetcher, error) {
	opts := fetch.WalkOptions{
		Platforms:     ps,
		AllPlatforms:  f.allPlatforms,
		Lazy:          []oci.Kind{oci.KindLayer, oci.KindConfig},
		Limit:         max(len(ps), 1),
		MaxConcurrent: 32,
	}
	var (
		root    ocispec.Descriptor
		data    []byte
		src     blobio.Fetcher
		fetcher blobio.Fetcher
	)
	if f.offline {
		var err error
		if root, err = store.LookupRef(ref.String()); err != nil {
			if errors.Is(err, cache.ErrRefNotFound) {
				return fusefs.Image{}, nil, fmt.Errorf("--offline: %s is not in the cache %s: mount it once online, or imgfs fetch --metadata-only it", ref, store.Root())
			}
			return fusefs.Image{}, nil, err
		}
		if data, err = store.ReadMetadata(ctx, root); err != nil {
			return fusefs.Image{}, nil, fmt.Errorf("--offline: %w", err)
		}
		src = offlineFetcher{}
	} else {
		remote, err := f.remoteFor(g, ref, f.fetchTimeout)
		if err != nil {
			return fusefs.Image{}, nil, err
		}
		if root, data, err = remote.Resolve(ctx); err != nil {
			return fusefs.Image{}, nil, err
		}
		src, fetcher = remote, remote
	}
	tree, err := fetch.Walk(ctx, store, fetch.Origin{Root: root, RootData: data, Fetcher: src, Repository: ref.Name()}, opts)
	if err != nil {
		if f.offline {
			return fusefs.Image{}, nil, fmt.Errorf("--offline: metadata of %s is not all cached: %w", ref, err)
		}
		return fusefs.Image{}, nil, err
	}
	if !f.offline {
		if err := store.SetRef(ref.String(), root, nil); err != nil {
			return fusefs.Image{}, nil, err
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
	if err != nil && f.offline {
		err = fmt.Errorf("--offline: metadata of %s is not all cached: %w", ref, err)
	}
	return img, fetcher, err
}

// backgroundGrace is how long an exiting mount lets its background work
// (the config fetch, --prefetch) go on, so that an unmount right after
// mounting still leaves every config cached, without waiting out a
// stalled registry. Closing the store then cancels what is left.
const backgroundGrace = 5 * time.Second

// inBackground runs fn through the store, which cancels it and waits for it
// when it closes; wg counts it for waitBackground. The store refuses only
// once closing, when fn has nothing left to do.
func inBackground(g *globalFlags, store *cache.Store, wg *sync.WaitGroup, fn func(context.Context)) {
	wg.Add(1)
	err := store.Go(func(ctx context.Context) {
		defer wg.Done()
		fn(ctx)
	})
	if err != nil {
		wg.Done()
		g.logger.Debug("background work not started", "error", err)
	}
}

// waitBackground waits for wg, at most backgroundGrace.
func waitBackground(wg *sync.WaitGroup) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	timer := time.NewTimer(backgroundGrace)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	}
}

// fetchConfigs fetches, after the mount is up, the configs the walk left
// lazy: metadata is eager, but only one config is needed to be ready.
// Until one lands, a read of it is served lazily like a layer.
func fetchConfigs(ctx context.Context, g *globalFlags, store *cache.Store, src blobio.Fetcher, source string, img fusefs.Image) {
	handler := fetch.FetchHandler(store, src, source, nil)
	var configs []ocispec.Descriptor
	for _, p := range img.Platforms {
		configs = append(configs, p.Config)
	}
	fillInBackground(ctx, g, store, "config", configs, func(ctx context.Context, desc ocispec.Descriptor) error {
		_, err := handler(ctx, desc)
		return err
	})
}

// prefetchLayers fills every layer of the mount in the background. The
// cache bounds it to a few connections, so reads keep priority.
func prefetchLayers(ctx context.Context, g *globalFlags, store *cache.Store, fetcher blobio.Fetcher, img fusefs.Image) {
	var layers []ocispec.Descriptor
	for _, desc := range img.Blobs {
		if !oci.IsMetadata(desc) {
			layers = append(layers, desc)
		}
	}
	fillInBackground(ctx, g, store, "layer", layers, func(ctx context.Context, desc ocispec.Descriptor) error {
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
func fillInBackground(ctx context.Context, g *globalFlags, store *cache.Store, kind string, descs []ocispec.Descriptor, fill func(context.Context, ocispec.Descriptor) error) {
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
				g.logger.Warn("background fetch failed; the "+kind+" stays lazy", "digest", desc.Digest, "error", err)
				return
			}
			g.logger.Debug("fetched in the background", "kind", kind, "digest", desc.Digest, "size", desc.Size)
		})
	}
}
