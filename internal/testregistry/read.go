package testregistry

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ManifestAccept is the Accept header value for manifest requests. The
// registry answers 404 MANIFEST_UNKNOWN for an index or manifest whose media
// type the request does not accept, so clients must list all four.
var ManifestAccept = strings.Join([]string{
	ocispec.MediaTypeImageIndex,
	ocispec.MediaTypeImageManifest,
	MediaTypeDockerManifestList,
	MediaTypeDockerManifest,
}, ", ")

// maxManifest bounds what GetManifest reads, as clients must: a registry
// (or a test override) can send anything.
const maxManifest = 4 << 20

// GetManifest fetches a manifest or index by tag or digest, directly from
// the registry, and returns its descriptor (media type from Content-Type,
// digest computed from the bytes) and body. It lets tests check what a tag
// resolves to without going through the code under test.
func (r *Registry) GetManifest(repo, ref string) (ocispec.Descriptor, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, r.apiURL(repo, "manifests", ref), nil)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	req.Header.Set("Accept", ManifestAccept)
	resp, err := r.client.Do(req)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ocispec.Descriptor{}, nil, fmt.Errorf("get manifest %s:%s: %w", repo, ref, httpError(resp))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxManifest+1))
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	if len(body) > maxManifest {
		return ocispec.Descriptor{}, nil, fmt.Errorf("get manifest %s:%s: larger than %d bytes", repo, ref, maxManifest)
	}
	return ocispec.Descriptor{
		MediaType: resp.Header.Get("Content-Type"),
		Digest:    digest.FromBytes(body),
		Size:      int64(len(body)),
	}, body, nil
}

// DeleteManifest deletes a manifest by digest, so tests can produce a tag or
// digest that the registry no longer serves.
func (r *Registry) DeleteManifest(repo string, d digest.Digest) error {
	return r.delete(repo, "manifests", d)
}

// DeleteBlob deletes a blob from repo, so tests can produce a manifest whose
// layer is missing (the registry then answers 404 BLOB_UNKNOWN).
func (r *Registry) DeleteBlob(repo string, d digest.Digest) error {
	return r.delete(repo, "blobs", d)
}

func (r *Registry) delete(repo, kind string, d digest.Digest) error {
	req, err := http.NewRequest(http.MethodDelete, r.apiURL(repo, kind, d.String()), nil)
	if err != nil {
		return err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("delete %s %s: %w", kind, d, httpError(resp))
	}
	return nil
}
