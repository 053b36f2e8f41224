package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/imgfs/imgfs/internal/testregistry"
)

// bench is what every scenario shares: the registry, the counting proxy in
// front of it, the pushed images, the report, and the results one scenario
// hands to a later one as its anchor.
type bench struct {
	ctx   context.Context
	cfg   config
	work  string // temporary directory holding everything the run writes
	reg   *testregistry.Registry
	proxy *testregistry.Proxy
	img   images
	rep   *report

	// Results carried between scenarios; empty when the scenario did not run.
	skopeoBig      samples // scenario 1: skopeo copy of the big image
	coldCatProxied samples // scenario 3: one cold reader through the mount and the proxy
	warmCache      string  // scenario 3: a cache holding the committed big layer
}

// setUp creates the work directory, starts the registry and the proxy, and
// pushes the images. On error it still returns the bench when there is
// something to tear down.
func setUp(ctx context.Context, cfg config, rep *report) (*bench, error) {
	start := time.Now()
	work, err := os.MkdirTemp("", "imgfs-bench-")
	if err != nil {
		return nil, err
	}
	b := &bench{ctx: ctx, cfg: cfg, work: work, rep: rep}
	b.reg, err = testregistry.StartProcess(filepath.Join(work, "registry"))
	if err != nil {
		return b, err
	}
	b.proxy, err = testregistry.NewProxy(b.reg.Host())
	if err != nil {
		return b, err
	}
	fmt.Fprintf(os.Stderr, "bench: registry on %s, proxy on %s; pushing images\n", b.reg.Host(), b.proxy.Host())
	b.img, err = pushImages(ctx, b.reg)
	if err != nil {
		return b, err
	}
	// Pushing wrote about 1.5 GB (layer files, the registry's uploads and
	// blobs). Flush it now, or its writeback competes with the first
	// measured runs; the registry's blobs stay in the page cache.
	if err := syncFS(work); err != nil {
		return b, err
	}
	rep.Setup = time.Since(start).Seconds()
	rep.Images = b.img.describe()
	rep.Tools = toolVersions(ctx)
	fmt.Fprintf(os.Stderr, "bench: set-up took %.1f s\n", rep.Setup)
	return b, nil
}

// tearDown stops everything setUp started and removes the work directory.
// Scenarios unmount their own mounts; any mount still under the work
// directory (after a panic, say) is detached here first, so that removing
// the directory never walks into a live filesystem.
func (b *bench) tearDown() {
	if b.proxy != nil {
		b.proxy.Close()
	}
	if b.reg != nil {
		b.reg.Close()
	}
	detachMountsUnder(b.work)
	if err := os.RemoveAll(b.work); err != nil {
		fmt.Fprintf(os.Stderr, "bench: remove %s: %v\n", b.work, err)
	}
}

// dir creates a new empty directory in the work directory.
func (b *bench) dir(pattern string) (string, error) {
	return os.MkdirTemp(b.work, pattern+"-")
}

// ref returns the reference of repo:tag on the registry, or through the
// counting proxy when proxied is set.
func (b *bench) ref(repoTag string, proxied bool) string {
	if proxied {
		return b.proxy.Host() + "/" + repoTag
	}
	return b.reg.Host() + "/" + repoTag
}

// syncFS flushes the dirty data of the filesystem holding dir (syncfs(2)),
// not of the whole machine.
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	return nil
}
