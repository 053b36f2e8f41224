package imagemount

import (
	"errors"
	"os"
	"strings"
	"sync/atomic"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/cache/artifacts"
	"github.com/imgfs/imgfs/fusefs"
	"github.com/imgfs/imgfs/internal/layer"
	"github.com/imgfs/imgfs/internal/oci"
)

var _ fusefs.FileCopies = (*layerFiles)(nil)

// OpenCopy opens the cache's copy of file i of the layer desc.
// None is opened for a layer served through a SOCI zTOC, whose entry
// positions need not be those the copies were keyed by.
func (l *layerFiles) OpenCopy(desc ocispec.Descriptor, i int, size int64) (*os.File, bool) {
	if l.servedByZtoc(desc) {
		return nil, false
	}
	return artifacts.OpenFileCopy(l.store, desc, layer.IndexVersion, i, size)
}

// servedByZtoc reports whether the layer desc is served through a SOCI
// zTOC.
func (l *layerFiles) servedByZtoc(desc ocispec.Descriptor) bool {
	l.mu.Lock()
	b := l.builds[desc.Digest]
	l.mu.Unlock()
	if b == nil {
		return false
	}
	select {
	case <-b.done:
		return strings.HasPrefix(b.source, "soci-")
	default:
		return false
	}
}

// NewCopy starts a copy of file i of the layer desc, when the bytes its
// reads return are verified: always for the formats that verify chunk by
// chunk or span by span (eStargz, zstd:chunked, indexed gzip and zstd);
// for an uncompressed tar, only once the whole blob is verified or with
// cache.VerifyStrict, as its reads are lazy blob reads otherwise. A layer
// served through a SOCI zTOC gets none: copies are keyed by the entry's
// position in imgfs's own index, which a zTOC's entries need not match.
func (l *layerFiles) NewCopy(desc ocispec.Descriptor, i int, size int64) fusefs.FileCopy {
	l.mu.Lock()
	b := l.builds[desc.Digest]
	l.mu.Unlock()
	if b == nil {
		return nil
	}
	select {
	case <-b.done:
	default:
		return nil
	}
	if b.err != nil || b.format == oci.FormatTar && !l.strict && !l.store.Exists(desc) || l.servedByZtoc(desc) {
		return nil
	}
	c, err := artifacts.NewFileCopy(l.store, desc, layer.IndexVersion, i, size)
	if errors.Is(err, cache.ErrOverCap) {
		l.log.Debug("file copy for passthrough not started", "layer", desc.Digest, "entry", i, "err", err)
		return nil
	}
	if err != nil {
		l.log.Warn("file copy for passthrough not started", "layer", desc.Digest, "entry", i, "err", err)
		return nil
	}
	return countedCopy{c, &b.copies}
}

// countedCopy counts its layer's committed copies for stats.json.
type countedCopy struct {
	*artifacts.FileCopy
	committed *atomic.Int64
}

func (c countedCopy) Commit() error {
	err := c.FileCopy.Commit()
	if err == nil {
		c.committed.Add(1)
	}
	return err
}
