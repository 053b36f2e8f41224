package fetch

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/fetch/hosts"
	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/oci"
)

// Remote is the cache's source of bytes.
var _ blobio.Fetcher = (*Remote)(nil)

// path returns where desc lives in the repository: manifests and indexes
// under manifests/, everything else under blobs/. desc must be valid.
func (r *Remote) path(desc ocispec.Descriptor) string {
	if k := oci.KindOf(desc); k == oci.KindIndex || k == oci.KindManifest {
		return "manifests/" + desc.Digest.String()
	}
	return "blobs/" + desc.Digest.String()
}

// Fetch returns the whole of desc. The caller verifies the bytes; the cache
// does so as it stores them.
func (r *Remote) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if err := oci.CheckDescriptor(desc); err != nil {
		return nil, permanent(fmt.Errorf("fetch: %w", err))
	}
	header := http.Header{}
	if k := oci.KindOf(desc); k == oci.KindIndex || k == oci.KindManifest {
		header.Set("Accept", desc.MediaType)
	}
	what := desc.Digest.String()
	var body io.ReadCloser
	err := r.do(ctx, hosts.Pull, desc.Digest, what, r.path(desc), header, func(ep *endpoint, resp *http.Response, last bool) error {
		if resp.StatusCode != http.StatusOK {
			defer resp.Body.Close()
			return r.blobStatusError(desc, resp)
		}
		if err := checkWholeLength(ep, desc, resp, last); err != nil {
			return err
		}
		body = resp.Body
		return nil
	})
	if err != nil {
		return nil, r.fetchError(desc, err)
	}
	return body, nil
}

// FetchRange returns exactly length bytes of desc from off with one bounded
// Range request. It insists on 206 and a Content-Range naming exactly the
// bytes asked for, so a registry that ignores Range cannot hand back the
// wrong bytes. A host that answers with 200 and the whole blob (a mirror
// that has not cached it yet, or a registry without ranges) is not asked
// again: its body goes to the cache as a *blobio.WholeBlob, which lands
// every chunk it lacks from it, and that host is put last for the blob's
// other ranges for wholeAnswerFor.
func (r *Remote) FetchRange(ctx context.Context, desc ocispec.Descriptor, off, length int64) (io.ReadCloser, error) {
	if err := oci.CheckDescriptor(desc); err != nil {
		return nil, permanent(fmt.Errorf("fetch: %w", err))
	}
	if length <= 0 || off < 0 || off > desc.Size-length {
		return nil, fmt.Errorf("fetch %s: range %d+%d outside the blob's %d bytes", desc.Digest, off, length, desc.Size)
	}
	last := off + length - 1
	header := http.Header{"Range": {fmt.Sprintf("bytes=%d-%d", off, last)}}
	what := desc.Digest.String()
	var body, whole io.ReadCloser
	err := r.do(ctx, hosts.Pull, desc.Digest, what, r.path(desc), header, func(ep *endpoint, resp *http.Response, isLast bool) error {
		switch resp.StatusCode {
		case http.StatusPartialContent:
			if err := checkContentRange(resp.Header.Get("Content-Range"), off, last, desc.Size); err != nil {
				resp.Body.Close()
				return mirrorOr(isLast, permanent(fmt.Errorf("fetch %s from %s: %w", desc.Digest, ep.role(), err)))
			}
			body = resp.Body
			return nil
		case http.StatusOK:
			if err := checkWholeLength(ep, desc, resp, isLast); err != nil {
				return err
			}
			r.routes.markWhole(ep, desc.Digest)
			r.log.Debug("whole-blob answer to a range request; the cache streams it", "digest", desc.Digest, "host", ep.sender(), "range", header.Get("Range"))
			whole = resp.Body
			return nil
		default:
			defer resp.Body.Close()
			return r.blobStatusError(desc, resp)
		}
	})
	if err != nil {
		return nil, r.fetchError(desc, err)
	}
	if whole != nil {
		return nil, &blobio.WholeBlob{Body: whole}
	}
	return body, nil
}

// checkWholeLength judges a 200 answer for the whole of desc: a
// Content-Length other than desc.Size closes the body and passes the host
// over (mirrorOr).
func checkWholeLength(ep *endpoint, desc ocispec.Descriptor, resp *http.Response, last bool) error {
	if resp.ContentLength < 0 || resp.ContentLength == desc.Size {
		return nil
	}
	resp.Body.Close()
	return mirrorOr(last, permanent(fmt.Errorf("fetch %s: %s sent %d bytes, descriptor says %d", desc.Digest, ep.sender(), resp.ContentLength, desc.Size)))
}

// mirrorOr returns err for the last host, and for any other asks for the
// next: a host that misbehaves is passed over while another may serve.
func mirrorOr(last bool, err error) error {
	if last {
		return err
	}
	return fallBack{reason: err.Error()}
}

// fetchError wraps a transport error with the digest; judged answers
// already name it.
func (r *Remote) fetchError(desc ocispec.Descriptor, err error) error {
	if strings.Contains(err.Error(), desc.Digest.String()) {
		return err
	}
	return fmt.Errorf("fetch %s: %w", desc.Digest, err)
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
