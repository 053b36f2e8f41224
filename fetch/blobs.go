package fetch

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache"
)

// Remote is the cache's source of bytes.
var _ cache.Fetcher = (*Remote)(nil)

// path returns where desc lives in the repository: manifests and indexes
// under manifests/, everything else under blobs/.
func (r *Remote) path(desc ocispec.Descriptor) string {
	if k := KindOf(desc); k == KindIndex || k == KindManifest {
		return "manifests/" + desc.Digest.String()
	}
	return "blobs/" + desc.Digest.String()
}

// Fetch returns the whole of desc. The caller verifies the bytes; the cache
// does so as it stores them.
func (r *Remote) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	header := http.Header{}
	if k := KindOf(desc); k == KindIndex || k == KindManifest {
		header.Set("Accept", desc.MediaType)
	}
	resp, err := r.get(ctx, r.path(desc), header)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", desc.Digest, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, statusError(r.blobName(desc), resp)
	}
	if resp.ContentLength >= 0 && resp.ContentLength != desc.Size {
		resp.Body.Close()
		return nil, fmt.Errorf("fetch %s: registry sent %d bytes, descriptor says %d", desc.Digest, resp.ContentLength, desc.Size)
	}
	return resp.Body, nil
}

// FetchRange returns exactly length bytes of desc from off with one bounded
// Range request. It insists on 206 and a Content-Range naming exactly the
// bytes asked for, so a registry that ignores Range cannot hand back the
// wrong bytes.
func (r *Remote) FetchRange(ctx context.Context, desc ocispec.Descriptor, off, length int64) (io.ReadCloser, error) {
	if length <= 0 || off < 0 || off+length > desc.Size {
		return nil, fmt.Errorf("fetch %s: range %d+%d outside the blob's %d bytes", desc.Digest, off, length, desc.Size)
	}
	last := off + length - 1
	header := http.Header{"Range": {fmt.Sprintf("bytes=%d-%d", off, last)}}
	resp, err := r.get(ctx, r.path(desc), header)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", desc.Digest, err)
	}
	switch resp.StatusCode {
	case http.StatusPartialContent:
		want := fmt.Sprintf("bytes %d-%d/%d", off, last, desc.Size)
		if got := resp.Header.Get("Content-Range"); strings.TrimSpace(got) != want {
			resp.Body.Close()
			return nil, fmt.Errorf("fetch %s: registry answered Content-Range %q to a request for %q", desc.Digest, got, want)
		}
		return resp.Body, nil
	case http.StatusOK:
		if off == 0 && length == desc.Size && (resp.ContentLength < 0 || resp.ContentLength == desc.Size) {
			return resp.Body, nil
		}
		resp.Body.Close()
		return nil, fmt.Errorf("fetch %s from %s: %w", desc.Digest, r.ref.Registry, cache.ErrRangeUnsupported)
	default:
		defer resp.Body.Close()
		return nil, statusError(r.blobName(desc), resp)
	}
}

func (r *Remote) blobName(desc ocispec.Descriptor) string {
	return r.ref.Name() + "@" + desc.Digest.String()
}
