package imagemount

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"sync/atomic"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache/artifacts"
	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/layer"
)

// suspectLayer serves a layer through a zTOC bound to nothing (a SOCI v1
// referrer) until the layer's verified bytes say otherwise. Every span it
// reads is still checked against the zTOC's digest; what no span digest
// covers (where each file starts, its size and metadata) is checked once
// the whole blob is verified, and a zTOC found lying serves nothing more.
type suspectLayer struct {
	layer.Layer
	refused atomic.Pointer[error]
	settled atomic.Bool // the cross-check found the zTOC true
}

var _ layer.Unsettled = (*suspectLayer)(nil)

// Unsettled is true until the cross-check has passed: pages the kernel
// kept from before a refusal would go on being served without it.
func (s *suspectLayer) Unsettled() bool { return !s.settled.Load() }

func (s *suspectLayer) ReadFile(ctx context.Context, i int, p []byte, off int64) (int, error) {
	if err := s.refused.Load(); err != nil {
		return 0, *err
	}
	return s.Layer.ReadFile(ctx, i, p, off)
}

// suspect is a layer served through a suspectLayer, waiting for its blob
// to be committed.
type suspect struct {
	build    *layerBuild
	ztoc     sharedZtoc
	layer    *suspectLayer
	checking atomic.Bool
}

// watch registers a layer served through an unbound zTOC, so that its
// blob's commit starts the cross-check; a blob already committed starts it
// now.
func (l *layerFiles) watch(b *layerBuild, z sharedZtoc, served layer.Layer) layer.Layer {
	s := &suspect{build: b, ztoc: z, layer: &suspectLayer{Layer: served}}
	l.mu.Lock()
	l.suspects[b.desc.Digest] = s
	l.mu.Unlock()
	if l.store.Exists(b.desc) {
		l.committed(b.desc)
	}
	return s.layer
}

// committed is the store's OnCommit callback.
func (l *layerFiles) committed(desc ocispec.Descriptor) {
	l.mu.Lock()
	s := l.suspects[desc.Digest]
	l.mu.Unlock()
	if s == nil || !s.checking.CompareAndSwap(false, true) {
		return
	}
	l.work.goWork(func(ctx context.Context) { l.crossCheck(ctx, s) })
}

// crossCheck derives the layer's index from its committed, verified blob
// and compares the zTOC's entries with it. On any difference the zTOC's
// layer serves nothing more: reads fail with EIO. Either way the derived
// index is stored, so that the next mount uses it and not the zTOC.
func (l *layerFiles) crossCheck(ctx context.Context, s *suspect) {
	desc, z := s.build.desc, s.ztoc
	defer func() {
		l.mu.Lock()
		delete(l.suspects, desc.Digest)
		l.mu.Unlock()
	}()
	idx, err := l.indexCommitted(ctx, desc)
	if ctx.Err() != nil {
		return
	}
	if err == nil {
		err = layer.CompareEntries(s.layer.Index().Entries, idx.Entries)
	}
	if err != nil {
		refusal := fmt.Errorf("%w: the SOCI %s index %s disagrees with the verified layer: %v", layer.ErrCorrupt, z.version, z.index.Digest, err)
		s.layer.refused.Store(&refusal)
		s.build.refusal.Store(refusal.Error())
		s.build.state.Store("refused")
		l.log.Error("SOCI index refused: its layer's files answer EIO from now on, and the index is not used again",
			"layer", desc.Digest, "index", z.index.Digest, "ztoc", z.ztoc.Desc.Digest, "err", err)
	} else {
		s.layer.settled.Store(true)
		l.log.Info("SOCI index matches the verified layer", "layer", desc.Digest, "index", z.index.Digest)
	}
	if idx == nil || idx.Check() != nil {
		return
	}
	data, err := idx.MarshalBinary()
	if err == nil {
		err = artifacts.WriteLayerIndex(l.store, desc, layer.IndexVersion, data)
	}
	if err != nil {
		l.log.Warn("layer index not stored", "layer", desc.Digest, "err", err)
	}
}

// indexCommitted indexes a committed gzip layer from the cache's file.
func (l *layerFiles) indexCommitted(ctx context.Context, desc ocispec.Descriptor) (*layer.Index, error) {
	path, ok := l.store.CompletePath(desc)
	if !ok {
		return nil, fmt.Errorf("layer %s: not committed", desc.Digest)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	idx, err := layer.BuildGzip(bufio.NewReaderSize(blobio.ContextReader(ctx, f), 1<<20), layer.BuildOptions{})
	if err != nil {
		return idx, fmt.Errorf("the verified layer does not index: %w", err)
	}
	return idx, nil
}
