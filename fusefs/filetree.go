package fusefs

import (
	"context"
	"fmt"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/layer"
)

// viewTree is a built file view: one layer's own tree, or the merged
// rootfs of a platform, and the layers that serve its files.
type viewTree struct {
	name   string // mount path of the view, for logs
	tree   *layer.Tree
	layers []layer.Layer // by Inode.Layer
	descs  []ocispec.Descriptor
	base   uint64 // added to the tree's inode numbers
}

// ino is the mount's inode number of a tree inode. Every view gets its own
// range, with the top bit set, far from the path-hashed numbers of the
// layout, so hard links inside a view share a number and nothing else does.
func (t *viewTree) ino(in *layer.Inode) uint64 { return t.base + in.Ino }

// viewBase returns the inode number base of the n-th view of a mount.
func viewBase(n int) uint64 { return 1<<63 | uint64(n+1)<<40 }

// lazyTree builds a view the first time it is needed, in the background:
// a waiter gives up when its request is cancelled, the build goes on. A
// failed build is tried again by the next caller.
type lazyTree struct {
	fsys   *imageFS
	name   string
	descs  []ocispec.Descriptor
	merged bool // rootfs: merge all layers; else one layer's own tree
	base   uint64

	mu   sync.Mutex
	done chan struct{}
	tree *viewTree
	err  error
}

// built returns the tree if it is built, without waiting.
func (l *lazyTree) built() *viewTree {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tree
}

// get returns the tree, building it if need be.
func (l *lazyTree) get(ctx context.Context) (*viewTree, error) {
	l.mu.Lock()
	if l.tree != nil {
		defer l.mu.Unlock()
		return l.tree, nil
	}
	if l.done == nil {
		l.done = make(chan struct{})
		go l.build(l.done)
	}
	done := l.done
	l.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tree != nil {
		return l.tree, nil
	}
	err := l.err
	if l.done == done {
		l.done = nil // the next caller tries again
	}
	return nil, err
}

func (l *lazyTree) build(done chan struct{}) {
	t, err := l.open()
	l.mu.Lock()
	l.tree, l.err = t, err
	l.mu.Unlock()
	close(done)
	if err != nil {
		l.fsys.log.Error("file view unavailable", "view", l.name, "err", err)
		return
	}
	for _, b := range t.tree.Bad {
		l.fsys.log.Warn("layer entry not served", "view", l.name, "layer", layerName(l.descs, b.Layer), "entry", b.Name, "reason", b.Reason)
	}
}

// open opens the layers, all at once, and builds the tree.
func (l *lazyTree) open() (*viewTree, error) {
	ctx := context.Background() // the LayerFiles build is bounded by the fetch timeouts
	layers := make([]layer.Layer, len(l.descs))
	errs := make([]error, len(l.descs))
	var wg sync.WaitGroup
	for i, d := range l.descs {
		wg.Go(func() { layers[i], errs[i] = l.fsys.img.Files.Layer(ctx, d) })
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil {
			// A broken index must not pass for a smaller layer, whatever
			// LayerFiles handed over.
			err = layers[i].Index().Check()
		}
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", layerName(l.descs, i), err)
		}
	}
	t := &viewTree{name: l.name, layers: layers, descs: l.descs, base: l.base}
	if l.merged {
		idx := make([]*layer.Index, len(layers))
		for i, ly := range layers {
			idx[i] = ly.Index()
		}
		t.tree = layer.Merge(idx)
	} else {
		t.tree = layer.LayerTree(layers[0].Index(), 0)
	}
	return t, nil
}

// layerName names layer i of descs for logs: its position and digest.
func layerName(descs []ocispec.Descriptor, i int) string {
	if i < 0 || i >= len(descs) {
		return fmt.Sprint(i)
	}
	return fmt.Sprintf("%d (%s)", i, descs[i].Digest)
}
