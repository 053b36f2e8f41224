package fetch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/fetch/hosts"
	"github.com/imgfs/imgfs/internal/errdefs"
	"github.com/imgfs/imgfs/internal/oci"
)

// MaxReferrers bounds the descriptors one referrers list may hold, over
// all its pages. A
// real image has a handful of referrers (signatures, SBOMs, a SOCI
// index); a registry that lists more is refused rather than trusted to
// make imgfs walk them all.
const MaxReferrers = 1024

// Referrers lists the manifests whose subject is subject and whose
// artifactType is artifactType ("" for any), as the OCI distribution spec
// 1.1 defines it: through GET /v2/<name>/referrers/<digest>, or, where the
// registry answers that with 404 (distribution 2.8 and other registries
// older than the API), through the index tagged <alg>-<ref> that clients
// push to such registries. A list the API pages (Link: rel="next") is
// read to its end, on the host that served its first page, within
// maxReferrerPages pages. No referrers is an empty list, not an error.
//
// Neither answer is bound by a digest the caller knows: the API's list is
// computed by the registry, and the fallback index is fetched by tag. The
// list says only which manifests the registry claims refer to subject;
// each descriptor's digest binds what is fetched through it, but whether
// to trust a referrer at all is the caller's to decide.
//
// Everything in the answer is checked: each page must be an OCI image
// index of at most oci.MaxMetadataSize bytes, the pages must list at most
// MaxReferrers entries in all, and every entry must pass
// oci.CheckDescriptor. Entries of another artifactType are skipped, since
// a registry may ignore the filter; so are entries that are not OCI
// manifests or indexes, which no client pushes as referrers.
func (r *Remote) Referrers(ctx context.Context, subject ocispec.Descriptor, artifactType string) ([]ocispec.Descriptor, error) {
	if err := oci.CheckDescriptor(subject); err != nil {
		return nil, fmt.Errorf("referrers: subject: %w", err)
	}
	if artifactType != "" {
		if err := oci.Check(artifactType); err != nil {
			return nil, fmt.Errorf("referrers of %s: artifact type: %w", subject.Digest, err)
		}
	}
	index, err := r.referrersAPI(ctx, subject.Digest, artifactType)
	if err == errNoReferrersAPI {
		r.log.Debug("registry has no referrers API, reading the fallback tag", "subject", subject.Digest)
		index, err = r.referrersByTag(ctx, subject.Digest)
	}
	if err != nil {
		return nil, err
	}
	return r.pickReferrers(index, artifactType), nil
}

// errNoReferrersAPI is referrersAPI's answer when the registry answers the
// API with 404, which the spec reserves for registries without it.
var errNoReferrersAPI = fmt.Errorf("%w: referrers API", ErrNotFound)

// referrersAPI asks the registry's referrers API for subject's referrers,
// following the list's pages on the host that served the first.
func (r *Remote) referrersAPI(ctx context.Context, subject digest.Digest, artifactType string) ([]ocispec.Descriptor, error) {
	what := "referrers of " + subject.String()
	path := "referrers/" + subject.String()
	query := ""
	if artifactType != "" {
		query = "artifactType=" + url.QueryEscape(artifactType)
	}
	header := http.Header{"Accept": {ocispec.MediaTypeImageIndex}}
	var resp *http.Response
	var served *endpoint
	var judged error
	// The list changes as referrers are pushed, as a tag does, so only a
	// host that may resolve tags is asked.
	err := r.do(ctx, hosts.Pull|hosts.Resolve, "", what, withQuery(path, query), header, func(ep *endpoint, got *http.Response, last bool) error {
		switch got.StatusCode {
		case http.StatusOK:
			resp, served = got, ep
			return nil
		case http.StatusNotFound:
			got.Body.Close()
			judged = errNoReferrersAPI
		default:
			defer got.Body.Close()
			judged = statusError(what, got)
		}
		return judged
	})
	if err != nil && err == judged {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if artifactType != "" {
		// The filter is applied again whatever the registry says; the
		// header only tells the logs whether the registry honoured it.
		applied := resp.Header.Get("OCI-Filters-Applied")
		r.log.Debug("referrers API answered", "subject", subject, "filters-applied", oneLine(applied, 100))
	}
	var all []ocispec.Descriptor
	for page := 1; ; page++ {
		entries, next, err := readReferrersPage(what, resp)
		if err != nil {
			return nil, err
		}
		all = append(all, entries...)
		if len(all) > MaxReferrers {
			return nil, fmt.Errorf("%w: %s: registry lists over %d referrers, the limit", errdefs.ErrTooLarge, what, MaxReferrers)
		}
		if next == "" {
			return all, nil
		}
		if page == maxReferrerPages {
			return nil, fmt.Errorf("%w: %s: registry pages the list over more than %d pages", errdefs.ErrTooLarge, what, maxReferrerPages)
		}
		// A page's cursor is the serving host's: the next page is asked
		// of it alone.
		if resp, err = r.get(ctx, served, withQuery(path, next), header); err != nil {
			return nil, fmt.Errorf("%s: page %d: %w", what, page+1, err)
		}
		if resp.StatusCode != http.StatusOK {
			defer resp.Body.Close()
			return nil, statusError(fmt.Sprintf("%s: page %d", what, page+1), resp)
		}
	}
}

// readReferrersPage reads and checks one page of a referrers answer and
// closes its body; next is the next page's query, "" on the last.
func readReferrersPage(what string, resp *http.Response) (entries []ocispec.Descriptor, next string, err error) {
	defer resp.Body.Close()
	data, err := readMetadata(what, resp)
	if err != nil {
		return nil, "", err
	}
	if entries, err = parseReferrers(what, resp.Header.Get("Content-Type"), data); err != nil {
		return nil, "", err
	}
	if next, err = nextPage(resp); err != nil {
		return nil, "", fmt.Errorf("%s: %w", what, err)
	}
	return entries, next, nil
}

// withQuery appends query, if any, to path.
func withQuery(path, query string) string {
	if query == "" {
		return path
	}
	return path + "?" + query
}

// referrersByTag reads the fallback index tagged <alg>-<ref>. A 404 means
// subject has no referrers. The index is not bound by any digest the
// caller knows; only the registry's Docker-Content-Digest, where sent, is
// checked, against corruption on the way.
func (r *Remote) referrersByTag(ctx context.Context, subject digest.Digest) ([]ocispec.Descriptor, error) {
	tag := referrersTag(subject)
	what := "referrers of " + subject.String() + " (tag " + tag + ")"
	header := http.Header{"Accept": {strings.Join(oci.Manifests, ", ")}}
	var resp *http.Response
	var judged error
	none := false
	err := r.do(ctx, hosts.Pull|hosts.Resolve, "", what, "manifests/"+tag, header, func(ep *endpoint, got *http.Response, last bool) error {
		switch got.StatusCode {
		case http.StatusOK:
			resp = got
			return nil
		case http.StatusNotFound:
			got.Body.Close()
			none = true
			return nil
		default:
			defer got.Body.Close()
			judged = statusError(what, got)
			return judged
		}
	})
	switch {
	case err != nil && err == judged:
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("%s: %w", what, err)
	case none:
		return nil, nil
	}
	defer resp.Body.Close()
	data, err := readMetadata(what, resp)
	if err != nil {
		return nil, err
	}
	want, err := contentDigest(resp.Header)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if want != "" {
		if got := want.Algorithm().FromBytes(data); got != want {
			return nil, fmt.Errorf("%w: %s: registry sent an index hashing to %s, expected %s", errdefs.ErrDigestMismatch, what, got, want)
		}
	}
	return parseReferrers(what, resp.Header.Get("Content-Type"), data)
}

// referrersTag is the spec's referrers tag schema, <alg>-<ref>, where ref
// is the subject's hex digest cut to 64 characters (so a sha512 subject's
// tag fits in the 128 characters a tag may have).
func referrersTag(subject digest.Digest) string {
	ref := subject.Encoded()
	if len(ref) > 64 {
		ref = ref[:64]
	}
	return subject.Algorithm().String() + "-" + ref
}

// parseReferrers decodes a referrers index from the wire and checks it:
// an OCI image index (by its mediaType, or its Content-Type when it has
// none), at most MaxReferrers entries, every one a valid descriptor with,
// if any, a valid artifactType.
func parseReferrers(what, contentType string, data []byte) ([]ocispec.Descriptor, error) {
	var index ocispec.Index
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&index); err != nil {
		return nil, fmt.Errorf("%w: %s: answer is not a JSON index: %s", ErrUnsupported, what, oneLine(err.Error(), 200))
	}
	mediaType := index.MediaType
	if mediaType == "" {
		mediaType, _, _ = mime.ParseMediaType(contentType)
	}
	if mediaType != ocispec.MediaTypeImageIndex {
		return nil, fmt.Errorf("%w: %s: answer's media type %s is not an OCI image index", ErrUnsupported, what, oci.Quote(mediaType))
	}
	if n := len(index.Manifests); n > MaxReferrers {
		return nil, fmt.Errorf("%w: %s: registry lists %d referrers, over the limit of %d", errdefs.ErrTooLarge, what, n, MaxReferrers)
	}
	for i, d := range index.Manifests {
		if err := oci.CheckDescriptor(d); err != nil {
			return nil, fmt.Errorf("%s: entry %d: %w", what, i, err)
		}
		if d.ArtifactType != "" {
			if err := oci.Check(d.ArtifactType); err != nil {
				return nil, fmt.Errorf("%s: entry %d: artifact type: %w", what, i, err)
			}
		}
	}
	return index.Manifests, nil
}

// pickReferrers keeps the OCI manifests and indexes of artifactType ("" for
// any), logging at debug what it skips.
func (r *Remote) pickReferrers(index []ocispec.Descriptor, artifactType string) []ocispec.Descriptor {
	picked := []ocispec.Descriptor{}
	for _, d := range index {
		switch {
		case artifactType != "" && d.ArtifactType != artifactType:
			r.log.Debug("referrer skipped: other artifact type", "digest", d.Digest, "artifactType", d.ArtifactType)
		case d.MediaType != ocispec.MediaTypeImageManifest && d.MediaType != ocispec.MediaTypeImageIndex:
			r.log.Debug("referrer skipped: not an OCI manifest or index", "digest", d.Digest, "mediaType", d.MediaType)
		default:
			picked = append(picked, d)
		}
	}
	return picked
}

// maxReferrerPages bounds the pages of one referrers list: a registry
// could otherwise send empty pages, each linking to the next, for ever.
const maxReferrerPages = 64

// nextPage returns the query of the next page of a paged referrers answer,
// "" when resp is the last page. The spec pages the list with a Link header
// (rel="next"); the link is followed only to the same host and path that
// resp answered, so that a registry cannot send imgfs, with its
// credentials, elsewhere. An ns= the link may carry is dropped: send adds
// its own for mirrors.
func nextPage(resp *http.Response) (string, error) {
	link := nextLink(resp.Header.Values("Link"))
	if link == "" {
		return "", nil
	}
	here := resp.Request.URL
	u, err := here.Parse(link)
	if err != nil || u.Host != here.Host || u.EscapedPath() != here.EscapedPath() {
		return "", fmt.Errorf("%w: registry's next-page link %s leaves the referrers list", ErrUnsupported, oneLine(link, 200))
	}
	q := u.Query()
	q.Del("ns")
	if len(q) == 0 {
		return "", fmt.Errorf("%w: registry's next-page link %s names no page", ErrUnsupported, oneLine(link, 200))
	}
	return q.Encode(), nil
}

// nextLink finds the URI of the rel="next" link in Link header values of
// the form `<uri>; rel="next"` (RFC 8288), or "".
func nextLink(values []string) string {
	for _, v := range values {
		for _, link := range strings.Split(v, ",") {
			target, params, ok := strings.Cut(link, ";")
			target = strings.TrimSpace(target)
			if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				continue
			}
			for _, p := range strings.Split(params, ";") {
				name, value, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(name, "rel") && strings.Trim(value, `"`) == "next" {
					return target[1 : len(target)-1]
				}
			}
		}
	}
	return ""
}
