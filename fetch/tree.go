package fetch

import (
	"context"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Tree records what a walk reached: every descriptor handled and the
// children it yielded after filtering. The mount builds its filesystem from
// it. It is safe for concurrent use by Dispatch.
type Tree struct {
	Root ocispec.Descriptor

	mu       sync.Mutex
	descs    map[digest.Digest]ocispec.Descriptor
	order    []digest.Digest
	children map[digest.Digest][]ocispec.Descriptor
}

// NewTree returns an empty tree for root.
func NewTree(root ocispec.Descriptor) *Tree {
	return &Tree{
		Root:     root,
		descs:    make(map[digest.Digest]ocispec.Descriptor),
		children: make(map[digest.Digest][]ocispec.Descriptor),
	}
}

// Record wraps h so that each handled descriptor and its children are
// recorded. Wrap the outermost handler, so filters have had their say.
func (t *Tree) Record(h Handler) HandlerFunc {
	return func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		children, err := h.Handle(ctx, desc)
		if err != nil {
			return children, err
		}
		t.mu.Lock()
		if _, seen := t.descs[desc.Digest]; !seen {
			t.order = append(t.order, desc.Digest)
			t.descs[desc.Digest] = desc
		}
		t.children[desc.Digest] = children
		t.mu.Unlock()
		return children, nil
	}
}

// Children returns what desc yielded.
func (t *Tree) Children(d digest.Digest) []ocispec.Descriptor {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.children[d]
}

// Descriptors returns every descriptor reached, each once, in the order
// first handled.
func (t *Tree) Descriptors() []ocispec.Descriptor {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]ocispec.Descriptor, len(t.order))
	for i, d := range t.order {
		out[i] = t.descs[d]
	}
	return out
}
