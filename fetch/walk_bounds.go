package fetch

import (
	"context"
	"fmt"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/oci"
)

// MaxWalkDepth bounds how far below its root a walk goes. The root is at
// depth 0, an index's manifests at 1; an image is at most three deep (index,
// manifest, layer), so 8 leaves room for indexes nested in indexes. A
// descriptor that would be handled deeper ends the walk with an error.
const MaxWalkDepth = 8

// MaxWalkDescriptors bounds how many distinct descriptors one walk handles,
// the root included. A large multi-platform image with attestations has a
// few hundred. A walk that reaches more ends with an error before handling
// any of them, so no memory or goroutine count grows with the number a
// registry writes.
const MaxWalkDescriptors = 10_000

// boundWalk wraps h so that Dispatch recurses only into children whose
// digest this walk has not met before, and ends the walk once it would go
// past MaxWalkDepth or MaxWalkDescriptors. h still sees, and a Tree still
// records, every child a descriptor lists: only the recursion is pruned. So
// an index listing one manifest 20 000 times costs one visit, and a chain of
// indexes each listing the next twice costs one visit per index, not 2^n.
// The key is the digest alone: a manifest an index lists twice, under two
// platforms, is handled once, as the entry met first.
func boundWalk(root ocispec.Descriptor, h Handler) HandlerFunc {
	w := &walkBounds{depth: map[digest.Digest]int{root.Digest: 0}}
	return func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		children, err := h.Handle(ctx, desc)
		if err != nil || len(children) == 0 {
			return children, err
		}
		return w.unseen(desc, children)
	}
}

// walkBounds holds the depth at which each digest of a walk was first met.
type walkBounds struct {
	mu    sync.Mutex
	depth map[digest.Digest]int
}

// unseen returns the children of parent not met before, and records them.
func (w *walkBounds) unseen(parent ocispec.Descriptor, children []ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	depth := w.depth[parent.Digest] + 1
	var fresh []ocispec.Descriptor
	for _, c := range children {
		if _, seen := w.depth[c.Digest]; seen {
			continue
		}
		switch {
		case depth > MaxWalkDepth:
			return nil, fmt.Errorf("walk: %s %s at depth %d lists %s: image nested deeper than MaxWalkDepth (%d)",
				oci.KindOf(parent), parent.Digest, depth-1, c.Digest, MaxWalkDepth)
		case len(w.depth) >= MaxWalkDescriptors:
			return nil, fmt.Errorf("walk: %s %s lists %s: image has more than MaxWalkDescriptors (%d) distinct descriptors",
				oci.KindOf(parent), parent.Digest, c.Digest, MaxWalkDescriptors)
		}
		w.depth[c.Digest] = depth
		fresh = append(fresh, c)
	}
	return fresh, nil
}
