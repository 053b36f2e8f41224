package imagemount

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/cache/artifacts"
	"github.com/imgfs/imgfs/fetch"
	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/layer"
	"github.com/imgfs/imgfs/internal/oci"
)

// IndexPlan says which index a mount would read a layer's files through.
type IndexPlan struct {
	// Source is "eStargz TOC", "zstd:chunked TOC", "tar headers",
	// "stored" (the cache's own), "SOCI v2", "SOCI v1 referrer", or
	// "none" when the mount would index the layer with a pass.
	Source string `json:"source"`
	// Size is the index's bytes, when known without a pass.
	Size int64 `json:"size,omitempty"`
	// Index is the SOCI index manifest the zTOC is listed in.
	Index digest.Digest `json:"index,omitempty"`
	// Error says why the layer has no usable index, when one is broken.
	Error string `json:"error,omitempty"`
}

// PlannedManifest is an image manifest and the layers it lists.
type PlannedManifest struct {
	Manifest ocispec.Descriptor
	Layers   []ocispec.Descriptor
}

// PlanIndexes says, for every layer the manifests list, which index a
// mount with the same cache, index mode and verify mode would use, in the
// mount's order: a TOC of the layer's own; the cache's stored index; the
// pass a cached layer needs anyway; a SOCI zTOC; else a pass. It reads the
// cache, the TOC formats' footers and the registry's SOCI indexes (into
// the cache, as a mount would), never a layer's body. root is the image's
// root descriptor, in the cache. A nil remote plans as an offline mount.
func PlanIndexes(ctx context.Context, store *cache.Store, remote *fetch.Remote, root ocispec.Descriptor, manifests []PlannedManifest, mode IndexMode, verify cache.VerifyMode) map[digest.Digest]IndexPlan {
	owners := map[digest.Digest][]ocispec.Descriptor{}
	for _, m := range manifests {
		for _, l := range m.Layers {
			owners[l.Digest] = append(owners[l.Digest], m.Manifest)
		}
	}
	var finder *sociFinder
	if remote != nil && mode == IndexAuto {
		finder = newSOCIFinder(store, remote, remote, root, owners, verify != cache.VerifyStrict, slog.New(slog.DiscardHandler))
	}
	plans := map[digest.Digest]IndexPlan{}
	for _, m := range manifests {
		for _, l := range m.Layers {
			if _, ok := plans[l.Digest]; !ok {
				plans[l.Digest] = planIndex(ctx, store, remote, finder, l)
			}
		}
	}
	return plans
}

func planIndex(ctx context.Context, store *cache.Store, remote *fetch.Remote, finder *sociFinder, desc ocispec.Descriptor) IndexPlan {
	format, _, err := oci.LayerFormatOf(desc)
	if err != nil {
		return IndexPlan{Source: "none", Error: err.Error()}
	}
	switch format {
	case oci.FormatEStargz, oci.FormatZstdChunked:
		p := IndexPlan{Source: "eStargz TOC"}
		if format == oci.FormatZstdChunked {
			p.Source = "zstd:chunked TOC"
		}
		if remote != nil {
			n, err := layer.TOCSize(ctx, rangeReader(remote, desc), desc.Size, format)
			if err != nil {
				p.Error = err.Error()
			}
			p.Size = n
		}
		return p
	case oci.FormatTar:
		return IndexPlan{Source: "tar headers"}
	}
	if data, ok, err := artifacts.ReadLayerIndex(store, desc, layer.IndexVersion); err == nil && ok {
		return IndexPlan{Source: "stored", Size: int64(len(data))}
	}
	if !store.Exists(desc) && finder != nil {
		if z, ok := finder.find(ctx, desc); ok {
			p := IndexPlan{Source: "SOCI v2", Size: z.ztoc.Desc.Size, Index: z.index.Digest}
			if !z.bound {
				p.Source = "SOCI v1 referrer"
			}
			return p
		}
	}
	return IndexPlan{Source: "none"}
}

// rangeReader reads a blob by exact ranges from the registry, caching
// nothing: inspect reads a footer of a few dozen bytes.
func rangeReader(f blobio.Fetcher, desc ocispec.Descriptor) blobio.ReaderAt {
	return blobio.ReaderAtFunc(func(ctx context.Context, p []byte, off int64) (int, error) {
		rc, err := f.FetchRange(ctx, desc, off, int64(len(p)))
		var whole *blobio.WholeBlob
		if errors.As(err, &whole) {
			whole.Body.Close()
		}
		if err != nil {
			return 0, err
		}
		defer rc.Close()
		return io.ReadFull(rc, p)
	})
}
