package fetch

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/errdefs"
	"github.com/imgfs/imgfs/internal/oci"
)

// AddToReferrersTag lists referrer among subject's referrers in the
// referrers tag, as the OCI distribution spec 1.1 asks of clients that
// push a manifest with a subject to a registry without the referrers API
// (PushedManifest.SubjectIndexed false): it reads the OCI image index
// tagged <alg>-<ref> from the server (none yet is an empty one), drops any
// entry with referrer's digest, appends referrer, and puts the index back
// under the tag. Entries other clients put there are kept as they are.
//
// referrer should carry what a referrers list shows of the manifest: its
// media type, digest and size, its artifactType and its annotations.
//
// The read and the write are two requests: a client that updates the tag
// between them loses its entry, as with every client of the fallback (the
// spec has no conditional write). A tag that holds something other than
// an OCI image index, or an index over MaxReferrers entries, is refused
// rather than overwritten.
func (r *Remote) AddToReferrersTag(ctx context.Context, subject, referrer ocispec.Descriptor) error {
	if err := oci.CheckDescriptor(subject); err != nil {
		return fmt.Errorf("referrers tag: subject: %w", err)
	}
	if err := oci.CheckDescriptor(referrer); err != nil {
		return fmt.Errorf("referrers tag of %s: referrer: %w", subject.Digest, err)
	}
	tag := referrersTag(subject.Digest)
	what := "referrers tag " + tag
	ep, err := r.server()
	if err != nil {
		return fmt.Errorf("update %s: %w", what, err)
	}
	index, err := r.readReferrersTag(ctx, ep, tag)
	if err != nil {
		return err
	}
	kept := index.Manifests[:0]
	for _, d := range index.Manifests {
		if d.Digest != referrer.Digest {
			kept = append(kept, d)
		}
	}
	index.Manifests = append(kept, referrer)
	if n := len(index.Manifests); n > MaxReferrers {
		return fmt.Errorf("%w: update %s: it would list %d referrers, over the limit of %d", errdefs.ErrTooLarge, what, n, MaxReferrers)
	}
	data, err := json.Marshal(index)
	if err != nil {
		return err
	}
	if _, err := r.PushManifest(ctx, ocispec.MediaTypeImageIndex, data, tag); err != nil {
		return fmt.Errorf("update %s: %w", what, err)
	}
	return nil
}

// readReferrersTag reads the index under tag from the server, or returns
// an empty one when there is none.
func (r *Remote) readReferrersTag(ctx context.Context, ep *endpoint, tag string) (ocispec.Index, error) {
	what := "referrers tag " + tag
	empty := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	header := http.Header{"Accept": {strings.Join(oci.Manifests, ", ")}}
	resp, err := r.push(ctx, ep, http.MethodGet, r.repoURL(ep, "manifests/"+tag), header, nil, 0)
	if err != nil {
		return empty, fmt.Errorf("read %s: %w", what, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return empty, nil
	default:
		return empty, pushStatusError(what+": GET", resp)
	}
	data, err := readMetadata(what, resp)
	if err != nil {
		return empty, err
	}
	want, err := contentDigest(resp.Header)
	if err != nil {
		return empty, fmt.Errorf("read %s: %w", what, err)
	}
	if want != "" {
		if got := want.Algorithm().FromBytes(data); got != want {
			return empty, fmt.Errorf("%w: read %s: registry sent an index hashing to %s, expected %s", errdefs.ErrDigestMismatch, what, got, want)
		}
	}
	var index ocispec.Index
	if err := json.Unmarshal(data, &index); err != nil {
		return empty, fmt.Errorf("%w: %s holds no JSON index (%s); not overwriting it", ErrUnsupported, what, oneLine(err.Error(), 200))
	}
	mediaType := index.MediaType
	if mediaType == "" {
		mediaType, _, _ = mime.ParseMediaType(resp.Header.Get("Content-Type"))
	}
	if index.SchemaVersion != 2 || mediaType != ocispec.MediaTypeImageIndex {
		return empty, fmt.Errorf("%w: %s holds a %s, not an OCI image index; not overwriting it", ErrUnsupported, what, oci.Quote(mediaType))
	}
	if n := len(index.Manifests); n > MaxReferrers {
		return empty, fmt.Errorf("%w: %s lists %d referrers, over the limit of %d", errdefs.ErrTooLarge, what, n, MaxReferrers)
	}
	index.MediaType = ocispec.MediaTypeImageIndex
	return index, nil
}

// ReferrersTag is the tag under which AddToReferrersTag lists subject's
// referrers: <alg>-<ref>, ref being the hex digest cut to 64 characters.
func ReferrersTag(subject digest.Digest) string { return referrersTag(subject) }
