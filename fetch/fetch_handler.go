package fetch

import (
	"bytes"
	"context"
	"fmt"
	"io"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/errdefs"
	"github.com/imgfs/imgfs/internal/oci"
)

// FetchHandler returns a handler that stores each descriptor's bytes in
// store, verified, unless they are there already ("exists"). Layers are
// filled with parallel range requests, resuming whatever lazy reads left in
// the cache; indexes, manifests and configs are small and streamed whole.
// source names the repository the bytes come from, recorded as provenance.
// It returns no children: chain it with ChildrenHandler.
func FetchHandler(store Store, src blobio.Fetcher, source string, progress Progress) HandlerFunc {
	if progress == nil {
		progress = NoProgress{}
	}
	return func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		kind := oci.KindOf(desc)
		// The walk has validated desc already; callers outside it may not
		// have, and the store builds paths from the digest.
		if err := oci.CheckDescriptor(desc); err != nil {
			return nil, fmt.Errorf("fetch %s: %w", kind, err)
		}
		if store.Exists(desc) {
			progress.Add(desc, desc.Size)
			progress.Status(desc, StatusExists)
			return nil, store.AddSource(desc.Digest, source)
		}
		progress.Status(desc, StatusDownloading)
		var err error
		if kind == oci.KindLayer {
			err = store.Fill(ctx, desc, src, func(n int64) { progress.Add(desc, n) })
		} else {
			err = ingestMetadata(ctx, store, src, desc, progress)
		}
		if err != nil {
			progress.Status(desc, StatusFailed)
			return nil, fmt.Errorf("fetch %s %s: %w", kind, desc.Digest, err)
		}
		progress.Status(desc, StatusDone)
		return nil, store.AddSource(desc.Digest, source)
	}
}

func ingestMetadata(ctx context.Context, store Store, src blobio.Fetcher, desc ocispec.Descriptor, progress Progress) error {
	if desc.Size > oci.MaxMetadataSize {
		return fmt.Errorf("%w: %s is %d bytes, over the %d MiB limit for metadata", errdefs.ErrTooLarge, oci.KindOf(desc), desc.Size, oci.MaxMetadataSize>>20)
	}
	rc, err := src.Fetch(ctx, desc)
	if err != nil {
		return err
	}
	defer rc.Close()
	return store.Ingest(ctx, desc, &progressReader{r: rc, desc: desc, progress: progress})
}

type progressReader struct {
	r        io.Reader
	desc     ocispec.Descriptor
	progress Progress
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.progress.Add(p.desc, int64(n))
	}
	return n, err
}

// Preloaded serves one blob whose bytes are already in memory, such as the
// manifest Resolve returned, and passes everything else to Fetcher.
type Preloaded struct {
	blobio.Fetcher
	Desc ocispec.Descriptor
	Data []byte
}

// Fetch serves the preloaded blob from memory.
func (p Preloaded) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if desc.Digest == p.Desc.Digest {
		return io.NopCloser(bytes.NewReader(p.Data)), nil
	}
	return p.Fetcher.Fetch(ctx, desc)
}
