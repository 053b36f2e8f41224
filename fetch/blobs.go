package fetch

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/fetch/mediatype"
)

// Remote is the cache's source of bytes.
var _ cache.Fetcher = (*Remote)(nil)

// path returns where desc lives in the repository: manifests and indexes
// under manifests/, everything else under blobs/. desc must be valid.
func (r *Remote) path(desc ocispec.Descriptor) string {
	if k := mediatype.KindOf(desc); k == mediatype.KindIndex || k == mediatype.KindManifest {
		return "manifests/" + desc.Digest.String()
	}
	return "blobs/" + desc.Digest.String()
}

// Fetch returns the whole of desc. The caller verifies the bytes; the cache
// does so as it stores them.
func (r *Remote) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if err := ValidateDescriptor(desc); err != nil {
		return nil, permanent(fmt.Errorf("fetch: %w", err))
	}
	header := http.Header{}
	if k := mediatype.KindOf(desc); k == mediatype.KindIndex || k == mediatype.KindManifest {
		header.Set("Accept", desc.MediaType)
	}
	resp, err := r.get(ctx, r.path(desc), header)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", desc.Digest, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, r.blobStatusError(desc, resp)
	}
	if resp.ContentLength >= 0 && resp.ContentLength != desc.Size {
		resp.Body.Close()
		return nil, permanent(fmt.Errorf("fetch %s: registry sent %d bytes, descriptor says %d", desc.Digest, resp.ContentLength, desc.Size))
	}
	return resp.Body, nil
}

// FetchRange returns exactly length bytes of desc from off with one bounded
// Range request. It insists on 206 and a Content-Range naming exactly the
// bytes asked for, so a registry that ignores Range cannot hand back the
// wrong bytes.
func (r *Remote) FetchRange(ctx context.Context, desc ocispec.Descriptor, off, length int64) (io.ReadCloser, error) {
	if err := ValidateDescriptor(desc); err != nil {
		return nil, permanent(fmt.Errorf("fetch: %w", err))
	}
	if length <= 0 || off < 0 || off > desc.Size-length {
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
		if err := checkContentRange(resp.Header.Get("Content-Range"), off, last, desc.Size); err != nil {
			resp.Body.Close()
			return nil, permanent(fmt.Errorf("fetch %s from %s: %w", desc.Digest, r.ref.Registry, err))
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
		return nil, r.blobStatusError(desc, resp)
	}
}

// checkContentRange reports whether a 206's Content-Range names exactly
// bytes first-last of a blob of size bytes.
func checkContentRange(got string, first, last, size int64) error {
	want := fmt.Sprintf("bytes %d-%d/%d", first, last, size)
	got = strings.TrimSpace(got)
	if got == want {
		return nil
	}
	// Say which part disagrees: a total other than the descriptor's size
	// means the registry has another blob under this digest.
	if i := strings.LastIndexByte(got, '/'); i >= 0 && strings.HasPrefix(got, "bytes ") {
		if total, err := strconv.ParseInt(got[i+1:], 10, 64); err == nil && total != size {
			return fmt.Errorf("registry says the blob is %d bytes, descriptor says %d", total, size)
		}
	}
	return fmt.Errorf("registry answered Content-Range %q to a request for %q", oneLine(got, 100), want)
}

// blobStatusError explains a failure status for desc, marking as permanent
// the statuses that asking again soon will not change.
func (r *Remote) blobStatusError(desc ocispec.Descriptor, resp *http.Response) error {
	err := statusError(r.ref.Name()+"@"+desc.Digest.String(), resp)
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusRequestedRangeNotSatisfiable:
		return permanent(err)
	}
	return err
}
