package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/fetch"
	"github.com/imgfs/imgfs/fetch/mediatype"
	"github.com/imgfs/imgfs/fusefs"
)

type mountFlags struct {
	registryFlags
	cacheOptions
	background    bool
	offline       bool
	noPassthrough bool
	debugFUSE     bool
	logFile       string
	prefetch      bool
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

It runs in the foreground until SIGINT or SIGTERM, then unmounts. With
--background it returns once the mount is ready; stop it with imgfs unmount.`,
		Args: exactArgs("ref", "mountpoint"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMount(cmd.Context(), g, f, args[0], args[1])
		},
	}
	f.registryFlags.register(cmd.Flags())
	f.cacheOptions.register(cmd.Flags())
	cmd.Flags().BoolVarP(&f.background, "background", "d", false, "return once the mount is ready, leaving the server running")
	cmd.Flags().BoolVar(&f.offline, "offline", false, "mount from the cache alone; reads of bytes not cached fail with EIO")
	cmd.Flags().BoolVar(&f.noPassthrough, "no-passthrough", false, "never hand complete blobs to the kernel (FUSE passthrough)")
	cmd.Flags().BoolVar(&f.prefetch, "prefetch", false, "fetch whole layers in the background after mounting; reads take priority")
	cmd.Flags().BoolVar(&f.debugFUSE, "debug-fuse", false, "log every FUSE request")
	cmd.Flags().StringVar(&f.logFile, "log-file", "", "write logs to `file` (default with --background: <cache-dir>/logs/mount-<pid>.log)")
	return cmd
}

func runMount(ctx context.Context, g *globalFlags, f *mountFlags, refArg, mountpoint string) (err error) {
	defer func() {
		if err != nil {
			signalReady(err) // a waiting parent prints it
		}
	}()
	ref, err := fetch.ParseReference(refArg)
	if err != nil {
		return usageError{err}
	}
	ps, err := f.parsePlatforms()
	if err != nil {
		return err
	}
	if err := fusefs.CheckFuseDevice(); err != nil {
		return err
	}
	if err := fusefs.CheckMountpoint(mountpoint); err != nil {
		return err
	}
	if f.background && !isBackgroundChild() {
		return startBackground(g, f)
	}
	if err := g.redirectLogs(f.logFile); err != nil {
		return err
	}
	store, err := g.openCache(f.cacheOptions.options())
	if err != nil {
		return err
	}
	defer store.Close()

	// Catch SIGINT and SIGTERM before mounting: dying of one halfway through
	// Mount, while go-fuse is probing the new mount from this very process,
	// would leave a process stuck on its own dead mount.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(stop)
	setupCtx, cancelSetup := context.WithCancel(ctx)
	defer cancelSetup()
	go func() {
		// A signal during set-up cancels the metadata fetch; the select
		// below sees it again and exits once nothing is left mounted.
		if sig, ok := <-stop; ok {
			cancelSetup()
			stop <- sig
		}
	}()

	img, fetcher, err := resolveForMount(setupCtx, g, f, store, ref, ps)
	if err != nil && setupCtx.Err() != nil {
		return errors.New("interrupted while fetching metadata; nothing was mounted")
	}
	if err != nil {
		return err
	}
	server, err := fusefs.Mount(mountpoint, img, blobSource{store: store, fetcher: fetcher}, fusefs.Options{
		FsName:      ref.String(),
		Logger:      g.logger,
		Debug:       f.debugFUSE,
		Passthrough: !f.noPassthrough,
		ExtraStats:  func() any { return store.Stats() },
	})
	if err != nil {
		return err
	}
	g.logger.Info("mounted", "ref", ref.String(), "mountpoint", mountpoint, "platforms", describePlatforms(img), "offline", f.offline)
	signalReady(nil)
	bgCtx, cancelBackground := context.WithCancel(ctx)
	var background sync.WaitGroup
	defer finishBackground(&background, cancelBackground)
	if fetcher != nil {
		background.Go(func() { fetchConfigs(bgCtx, g, store, fetcher, ref.Name(), img) })
	}
	if f.prefetch && fetcher != nil {
		go prefetchLayers(bgCtx, g, store, fetcher, img)
	}

	done := make(chan struct{})
	go func() { server.Wait(); close(done) }()
	select {
	case sig := <-stop:
		g.logger.Info("unmounting", "signal", sig.String(), "mountpoint", mountpoint)
		if err := server.Unmount(); err != nil {
			return fmt.Errorf("unmount %s: %w", mountpoint, err)
		}
		<-done
	case <-done: // unmounted from outside (imgfs unmount, umount)
	}
	return nil
}

// resolveForMount walks the image's metadata into the cache through the
// same handler chain as fetch, leaving layers lazy. Offline, everything
// must already be in the cache.
func resolveForMount(ctx context.Context, g *globalFlags, f *mountFlags, store *cache.Store, ref fetch.Reference, ps []ocispec.Platform) (fusefs.Image, cache.Fetcher, error) {
	opts := fetch.WalkOptions{
		Platforms:     ps,
		AllPlatforms:  f.allPlatforms,
		Lazy:          []mediatype.Kind{mediatype.KindLayer, mediatype.KindConfig},
		Limit:         max(len(ps), 1),
		MaxConcurrent: 32,
	}
	var (
		root    ocispec.Descriptor
		data    []byte
		src     cache.Fetcher
		fetcher cache.Fetcher
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
		_, remote, err := f.remote(g, ref.String())
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
	if err != nil && f.offline {
		err = fmt.Errorf("--offline: metadata of %s is not all cached: %w", ref, err)
	}
	return img, fetcher, err
}

// backgroundGrace is how long an exiting mount lets the background config
// fetch finish, so that an unmount right after mounting still leaves every
// config cached, without waiting out a stalled registry.
const backgroundGrace = 5 * time.Second

func finishBackground(wg *sync.WaitGroup, cancel context.CancelFunc) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(backgroundGrace):
		cancel()
		<-done
	}
	cancel()
}

// fetchConfigs fetches, after the mount is up, the configs the walk left
// lazy: metadata is eager, but only one config is needed to be ready.
// Until one lands, a read of it is served lazily like a layer.
func fetchConfigs(ctx context.Context, g *globalFlags, store *cache.Store, src cache.Fetcher, source string, img fusefs.Image) {
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
func prefetchLayers(ctx context.Context, g *globalFlags, store *cache.Store, fetcher cache.Fetcher, img fusefs.Image) {
	var layers []ocispec.Descriptor
	for _, desc := range img.Blobs {
		if !mediatype.IsMetadata(desc) {
			layers = append(layers, desc)
		}
	}
	fillInBackground(ctx, g, store, "layer", layers, func(ctx context.Context, desc ocispec.Descriptor) error {
		return store.Prefetch(ctx, desc, fetcher)
	})
}

// fillInBackground runs fill on every blob the cache lacks, in parallel,
// and logs the outcome; a failure leaves the blob lazy, nothing worse.
func fillInBackground(ctx context.Context, g *globalFlags, store *cache.Store, kind string, descs []ocispec.Descriptor, fill func(context.Context, ocispec.Descriptor) error) {
	var wg sync.WaitGroup
	for _, desc := range descs {
		if store.Exists(desc) {
			continue
		}
		wg.Go(func() {
			if err := fill(ctx, desc); err != nil {
				g.logger.Warn("background fetch failed; the "+kind+" stays lazy", "digest", desc.Digest, "error", err)
				return
			}
			g.logger.Debug("fetched in the background", "kind", kind, "digest", desc.Digest, "size", desc.Size)
		})
	}
	wg.Wait()
}
