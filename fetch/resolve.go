package fetch

import (
	"bytes"
	"context"
	_ "crypto/sha256" // digest algorithms a manifest may be named by
	_ "crypto/sha512"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/fetch/hosts"
	"github.com/imgfs/imgfs/internal/errdefs"
	"github.com/imgfs/imgfs/internal/oci"
)

// Resolve fetches the manifest or index the reference names and returns
// its descriptor and bytes. The bytes are verified against the digest in
// the reference or, for a tag, against the registry's Docker-Content-Digest.
func (r *Remote) Resolve(ctx context.Context) (ocispec.Descriptor, []byte, error) {
	what := r.ref.String()
	header := http.Header{"Accept": {strings.Join(oci.Manifests, ", ")}}
	// A tag needs a host that may resolve; a digest is content, which any
	// host that may pull can serve.
	capability := hosts.Pull
	if r.ref.Digest == "" {
		capability |= hosts.Resolve
	}
	var resp *http.Response
	var statusErr error
	err := r.do(ctx, capability, "", what, "manifests/"+r.ref.Object(), header, func(ep *endpoint, got *http.Response, last bool) error {
		if got.StatusCode != http.StatusOK {
			defer got.Body.Close()
			statusErr = statusError(what, got)
			return statusErr
		}
		resp = got
		return nil
	})
	if err != nil && err == statusErr {
		return ocispec.Descriptor{}, nil, err
	}
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("resolve %s: %w", what, err)
	}
	defer resp.Body.Close()
	data, err := readMetadata(what, resp)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	mediaType, err := manifestMediaType(what, resp.Header.Get("Content-Type"), data)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	want, err := r.expectedDigest(resp.Header)
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("resolve %s: %w", what, err)
	}
	got := digest.FromBytes(data)
	if want != "" {
		got = want.Algorithm().FromBytes(data)
		if got != want {
			return ocispec.Descriptor{}, nil, fmt.Errorf("%w: %s: registry sent a manifest hashing to %s, expected %s", errdefs.ErrDigestMismatch, what, got, want)
		}
	}
	root := ocispec.Descriptor{MediaType: mediaType, Digest: got, Size: int64(len(data))}
	if err := oci.CheckDescriptor(root); err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("resolve %s: %w", what, err)
	}
	return root, data, nil
}

// expectedDigest returns the digest the manifest must hash to: the one in
// the reference or, for a tag, the registry's Docker-Content-Digest, each
// validated before use. It returns "" when there is neither.
func (r *Remote) expectedDigest(header http.Header) (digest.Digest, error) {
	if r.ref.Digest != "" {
		if err := oci.CheckDigest(r.ref.Digest); err != nil {
			return "", fmt.Errorf("reference: %w", err)
		}
		return r.ref.Digest, nil
	}
	return contentDigest(header)
}

// contentDigest returns the registry's Docker-Content-Digest, validated, or
// "" when there is none.
func contentDigest(header http.Header) (digest.Digest, error) {
	values := header.Values("Docker-Content-Digest")
	switch len(values) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", fmt.Errorf("registry sent %d Docker-Content-Digest headers", len(values))
	}
	d := digest.Digest(values[0])
	if err := oci.CheckDigest(d); err != nil {
		return "", fmt.Errorf("registry sent an invalid Docker-Content-Digest: %w", err)
	}
	return d, nil
}

// readMetadata reads a manifest body, refusing more than oci.MaxMetadataSize
// before reading it where the length is announced.
func readMetadata(what string, resp *http.Response) ([]byte, error) {
	tooLarge := func(n string) error {
		return fmt.Errorf("%w: %s: manifest is %s bytes, over the %d MiB limit", errdefs.ErrTooLarge, what, n, oci.MaxMetadataSize>>20)
	}
	if resp.ContentLength > oci.MaxMetadataSize {
		return nil, tooLarge(fmt.Sprint(resp.ContentLength))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, oci.MaxMetadataSize+1))
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", what, err)
	}
	if len(data) > oci.MaxMetadataSize {
		return nil, tooLarge("over " + fmt.Sprint(oci.MaxMetadataSize))
	}
	return data, nil
}

// manifestMediaType decides what a manifest is from its own mediaType field,
// falling back to the Content-Type header, and refuses what imgfs cannot
// walk.
func manifestMediaType(what, contentType string, data []byte) (string, error) {
	var probe struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
	}
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&probe); err != nil {
		return "", fmt.Errorf("%w: %s: manifest is not JSON: %v", ErrUnsupported, what, err)
	}
	header, _, _ := mime.ParseMediaType(contentType)
	mediaType := probe.MediaType
	if mediaType == "" {
		mediaType = header
	}
	if probe.SchemaVersion == 1 || oci.IsSchema1(mediaType) || oci.IsSchema1(header) {
		return "", fmt.Errorf("%w: %s: schema1 manifests are not supported (there is no conversion); push the image again with a current client", ErrUnsupported, what)
	}
	if !oci.IsIndex(mediaType) && !oci.IsManifest(mediaType) {
		return "", fmt.Errorf("%w: %s: media type %.100q is not an image index or manifest", ErrUnsupported, what, mediaType)
	}
	return mediaType, nil
}
