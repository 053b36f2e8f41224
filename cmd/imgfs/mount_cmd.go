package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/fetch"
	"github.com/imgfs/imgfs/fusefs"
	"github.com/imgfs/imgfs/internal/imagemount"
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
	index          string
	metricsAddress string
	maxEntries     int
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
	cmd.Flags().StringVar(&f.index, "index", "auto", "`auto`: read a gzip layer's files through a SOCI index published with the image (v2 bound into it; v1 referrers too, unless --verify strict) before indexing it with a pass; none: never look")
	cmd.Flags().IntVar(&f.maxEntries, "max-layer-entries", imagemount.DefaultMaxLayerEntries, "the most entries one layer may hold; a layer with more answers EIO, as a broken one (the cap bounds the memory a layer's index takes)")
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
	indexMode, err := imagemount.ParseIndexMode(f.index)
	if err != nil {
		return usageError{fmt.Errorf("--index: %w", err)}
	}
	maxSize, err := f.cacheOptions.maxSizeBytes()
	if err != nil {
		return err
	}
	if f.maxEntries < 1 {
		return usageError{fmt.Errorf("--max-layer-entries: %d, want at least 1", f.maxEntries)}
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
	defer limitMemory()()
	store, lru, err := g.openCache(opts)
	if err != nil {
		return err
	}
	defer store.Close()

	mo := imagemount.Options{
		Ref:          ref,
		Platforms:    ps,
		AllPlatforms: f.allPlatforms,
		Index:        indexMode,
		Prefetch:     f.prefetch,
		MaxCacheSize: maxSize,
		MaxEntries:   f.maxEntries,
		LRU:          lru,
		FUSE:         fusefs.Options{Debug: f.debugFUSE, Passthrough: !f.noPassthrough, AllowOther: f.allowOther},
		Logger:       g.logger,
	}
	if !f.offline {
		if mo.Remote, err = f.remoteFor(g, ref, f.fetchTimeout); err != nil {
			return err
		}
	}
	m, err := imagemount.Start(ctx, store, mountpoint, mo)
	if errors.Is(err, imagemount.ErrStopped) {
		return fmt.Errorf("fetching the metadata of %s stopped; nothing was mounted", ref)
	}
	if err != nil {
		return err
	}
	defer m.Close()
	if f.metricsAddress != "" {
		stop, err := serveMountMetrics(f.metricsAddress, m, g.logger)
		if err != nil {
			m.Unmount()
			return usageError{err}
		}
		defer stop()
	}
	g.logger.Info("mounted", "ref", ref.String(), "mountpoint", mountpoint, "platforms", m.Platforms(), "offline", f.offline, "verify", f.verify)
	signalReady(nil)

	unmounted := make(chan struct{})
	go func() { m.Wait(); close(unmounted) }()
	select {
	case <-ctx.Done():
		g.logger.Info("unmounting", "reason", "signal", "mountpoint", mountpoint)
		if err := m.Unmount(); err != nil {
			return fmt.Errorf("unmount %s: %w", mountpoint, err)
		}
		<-unmounted
	case <-unmounted: // unmounted from outside (imgfs unmount, umount)
	}
	return nil
}
