package fetch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"

	"github.com/imgfs/imgfs/fetch/hosts"
	"github.com/imgfs/imgfs/internal/errdefs"
	"github.com/imgfs/imgfs/internal/oci"
)

// Pushing goes to the registry's server, the last host hosts.toml names,
// never to a mirror: a mirror serves what its origin has, and what is
// pushed must land at the origin. It rides on the server's auth client, so
// challenges, tokens (with the push scope added to the pull scope) and
// retries apply as they do to reads. Every answer is the registry's word
// and is checked: statuses, Location headers, Docker-Content-Digest.

// ErrPushRefused means the registry answered a push with a status that
// says no; the error names the blob or manifest and the status.
var ErrPushRefused = errors.New("push refused")

// PushedManifest is what the registry made of a manifest pushed to it.
type PushedManifest struct {
	// Desc is the manifest's descriptor: its media type, digest and size.
	Desc ocispec.Descriptor
	// SubjectIndexed says the registry answered with an OCI-Subject header
	// naming the manifest's subject: it has the referrers API and lists
	// the manifest among the subject's referrers. It is false for a
	// manifest without a subject, and on registries without the API,
	// whose referrers clients keep in the referrers tag (see
	// AddToReferrersTag).
	SubjectIndexed bool
}

// CheckTag reports whether tag is a valid tag, as the distribution spec's
// grammar has it: [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.
func CheckTag(tag string) error {
	ref := registry.Reference{Registry: "localhost", Repository: "x", Reference: tag}
	if err := ref.ValidateReferenceAsTag(); err != nil {
		return fmt.Errorf("%w: tag %s: want 1 to 128 of letters, digits, _ . and -, not starting with . or -", ErrInvalidReference, oci.Quote(tag))
	}
	return nil
}

// PushBlob uploads content, the bytes of desc, to the repository, unless
// the registry says (HEAD) that it has the blob already. The upload is
// monolithic: a POST opens it, one PUT with ?digest= carries the bytes.
// The registry checks the digest; content is read from 0 to desc.Size,
// and again from the start if the request must be sent again (a challenge,
// a retry).
func (r *Remote) PushBlob(ctx context.Context, desc ocispec.Descriptor, content io.ReaderAt) error {
	if err := oci.CheckDescriptor(desc); err != nil {
		return fmt.Errorf("push blob: %w", err)
	}
	what := "blob " + desc.Digest.String()
	ep, err := r.server()
	if err != nil {
		return fmt.Errorf("push %s: %w", what, err)
	}
	exists, err := r.blobExists(ctx, ep, desc)
	if err != nil {
		return err
	}
	if exists {
		r.log.Debug("blob exists, not pushed", "digest", desc.Digest)
		return nil
	}
	loc, err := r.startUpload(ctx, ep, what)
	if err != nil {
		return err
	}
	q := loc.Query()
	q.Set("digest", desc.Digest.String())
	loc.RawQuery = q.Encode()
	header := http.Header{"Content-Type": {"application/octet-stream"}}
	resp, err := r.push(ctx, ep, http.MethodPut, loc.String(), header, content, desc.Size)
	if err != nil {
		return fmt.Errorf("push %s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return pushStatusError(what, resp)
	}
	if err := checkPushedDigest(what, resp.Header, desc.Digest); err != nil {
		return err
	}
	r.log.Debug("blob pushed", "digest", desc.Digest, "size", desc.Size)
	return nil
}

// CheckPush asks the server whether the credentials may push to the
// repository, without pushing anything: it opens an upload session and
// cancels it. A caller with long work before its first push (building
// indexes from whole layers) learns of a refusal before that work.
func (r *Remote) CheckPush(ctx context.Context) error {
	what := "to " + r.ref.Name()
	ep, err := r.server()
	if err != nil {
		return fmt.Errorf("push %s: %w", what, err)
	}
	loc, err := r.startUpload(ctx, ep, what)
	if err != nil {
		return err
	}
	// The session would expire by itself; cancelling it is a courtesy,
	// and its failure no concern of the caller's.
	if resp, err := r.push(ctx, ep, http.MethodDelete, loc.String(), nil, nil, 0); err == nil {
		resp.Body.Close()
	}
	return nil
}

// startUpload opens an upload session on the server and returns where
// its bytes go.
func (r *Remote) startUpload(ctx context.Context, ep *endpoint, what string) (*url.URL, error) {
	resp, err := r.push(ctx, ep, http.MethodPost, r.repoURL(ep, "blobs/uploads/"), nil, nil, 0)
	if err != nil {
		return nil, fmt.Errorf("push %s: %w", what, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return nil, pushStatusError(what+": start upload", resp)
	}
	loc, err := uploadLocation(ep, resp)
	if err != nil {
		return nil, fmt.Errorf("push %s: %w", what, err)
	}
	return loc, nil
}

// blobExists asks the server whether it has desc: 200 yes, 404 no,
// anything else an error.
func (r *Remote) blobExists(ctx context.Context, ep *endpoint, desc ocispec.Descriptor) (bool, error) {
	what := "blob " + desc.Digest.String()
	resp, err := r.push(ctx, ep, http.MethodHead, r.repoURL(ep, "blobs/"+desc.Digest.String()), nil, nil, 0)
	if err != nil {
		return false, fmt.Errorf("push %s: %w", what, err)
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, pushStatusError(what+": HEAD", resp)
}

// PushManifest puts data, a manifest or index of mediaType, in the
// repository under tag, or under its own digest when tag is "". The
// blobs and manifests it names must be there already: the registry
// checks. A Docker-Content-Digest other than data's digest is an error.
func (r *Remote) PushManifest(ctx context.Context, mediaType string, data []byte, tag string) (PushedManifest, error) {
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	if err := oci.CheckDescriptor(desc); err != nil {
		return PushedManifest{}, fmt.Errorf("push manifest: %w", err)
	}
	ref := tag
	if ref == "" {
		ref = desc.Digest.String()
	} else if err := CheckTag(tag); err != nil {
		return PushedManifest{}, fmt.Errorf("push manifest %s: %w", desc.Digest, err)
	}
	what := "manifest " + desc.Digest.String()
	if tag != "" {
		what += " as " + r.ref.Name() + ":" + tag
	}
	ep, err := r.server()
	if err != nil {
		return PushedManifest{}, fmt.Errorf("push %s: %w", what, err)
	}
	header := http.Header{"Content-Type": {mediaType}}
	resp, err := r.push(ctx, ep, http.MethodPut, r.repoURL(ep, "manifests/"+ref), header, bytes.NewReader(data), desc.Size)
	if err != nil {
		return PushedManifest{}, fmt.Errorf("push %s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return PushedManifest{}, pushStatusError(what, resp)
	}
	if err := checkPushedDigest(what, resp.Header, desc.Digest); err != nil {
		return PushedManifest{}, err
	}
	var probe struct {
		Subject *ocispec.Descriptor `json:"subject"`
	}
	pushed := PushedManifest{Desc: desc}
	if json.Unmarshal(data, &probe) == nil && probe.Subject != nil {
		pushed.SubjectIndexed = strings.TrimSpace(resp.Header.Get("OCI-Subject")) == probe.Subject.Digest.String()
	}
	r.log.Debug("manifest pushed", "digest", desc.Digest, "tag", tag, "subject-indexed", pushed.SubjectIndexed)
	return pushed, nil
}

// server returns the endpoint pushes go to: the registry's server, which
// hosts.toml must allow to push.
func (r *Remote) server() (*endpoint, error) {
	ep := r.endpoints[len(r.endpoints)-1]
	if ep.Mirror {
		return nil, fmt.Errorf("hosts.toml for %s names no server to push to", r.ref.Registry)
	}
	if !ep.Allows(hosts.Push) {
		return nil, fmt.Errorf("hosts.toml for %s does not give its server %s the push capability", r.ref.Registry, ep.Host.Host)
	}
	return ep, nil
}

// repoURL returns the URL of path under the repository on ep.
func (r *Remote) repoURL(ep *endpoint, path string) string {
	return ep.BaseURL() + "/" + r.ref.Repository + "/" + path
}

// push sends one request to the server with the repository's pull and push
// scopes. body, when not nil, holds the size bytes to send; each attempt
// reads them afresh from its start.
func (r *Remote) push(ctx context.Context, ep *endpoint, method, rawURL string, header http.Header, body io.ReaderAt, size int64) (*http.Response, error) {
	plain := ep.plain()
	resp, err := r.sendPush(ctx, ep, method, rawURL, header, body, size)
	if err != nil && !plain && ep.plain() && ctx.Err() == nil {
		// As in get: the host turned out to speak plain HTTP; ask again
		// with an http URL so that oras accepts an http token realm.
		return r.sendPush(ctx, ep, method, rawURL, header, body, size)
	}
	return resp, err
}

func (r *Remote) sendPush(ctx context.Context, ep *endpoint, method, rawURL string, header http.Header, body io.ReaderAt, size int64) (*http.Response, error) {
	scopeRef := registry.Reference{Registry: ep.Host.Host, Repository: r.ref.Repository}
	ctx = auth.AppendRepositoryScope(ctx, scopeRef, auth.ActionPull, auth.ActionPush)
	if ep.plain() && strings.HasPrefix(rawURL, "https://") {
		rawURL = "http://" + strings.TrimPrefix(rawURL, "https://")
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, nil)
	if err != nil {
		return nil, err
	}
	if body != nil && size > 0 {
		// A fresh reader per attempt: an attempt's body may still be
		// read by the transport when the next one starts.
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(io.NewSectionReader(body, 0, size)), nil }
		req.Body, _ = req.GetBody()
		req.ContentLength = size
	}
	return ep.do(ctx, req, header)
}

// uploadLocation resolves an upload's Location against the request that
// got it. It must stay on the server's host and scheme: the session's
// bytes, and the token sent with them, go nowhere else.
func uploadLocation(ep *endpoint, resp *http.Response) (*url.URL, error) {
	values := resp.Header.Values("Location")
	if len(values) != 1 {
		return nil, fmt.Errorf("%w: registry answered an upload with %d Location headers, want 1", ErrUnexpectedStatus, len(values))
	}
	loc, err := resp.Request.URL.Parse(values[0])
	if err != nil {
		return nil, fmt.Errorf("%w: registry answered an upload with an invalid Location %s", ErrUnexpectedStatus, oci.Quote(oneLine(values[0], 100)))
	}
	scheme := ep.Scheme
	if ep.plain() {
		scheme = "http"
	}
	if loc.Host != ep.Host.Host || loc.Scheme != scheme {
		return nil, fmt.Errorf("%w: registry sent the upload to %s, not to itself (%s://%s); imgfs uploads only to the registry",
			ErrUnsupported, oci.Quote(oneLine(loc.Scheme+"://"+loc.Host, 100)), scheme, ep.Host.Host)
	}
	loc.Fragment, loc.RawFragment = "", ""
	return loc, nil
}

// checkPushedDigest checks the registry's Docker-Content-Digest, where it
// sent one, against the digest pushed.
func checkPushedDigest(what string, header http.Header, want digest.Digest) error {
	got, err := contentDigest(header)
	if err != nil {
		return fmt.Errorf("push %s: %w", what, err)
	}
	if got != "" && got != want {
		return fmt.Errorf("%w: push %s: registry says it stored %s", errdefs.ErrDigestMismatch, what, got)
	}
	return nil
}

// pushStatusError explains a registry's refusal of a push: 401 and 403 as
// an AuthError (the credentials do not allow pushing), anything else as
// ErrPushRefused with the status and the registry's own message.
func pushStatusError(what string, resp *http.Response) error {
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return &AuthError{Failure: Refused, err: fmt.Errorf("%w: push %s: %s (the credentials do not allow pushing to %s)",
			ErrUnauthorized, what, resp.Status, resp.Request.URL.Host)}
	}
	detail := resp.Status
	var body struct{ Errors errcode.Errors }
	if decodeJSON(resp.Body, &body, 64<<10) == nil && len(body.Errors) > 0 {
		e := body.Errors[0]
		detail += ": " + oneLine(e.Code, 60)
		if e.Message != "" {
			detail += ": " + oneLine(e.Message, 200)
		}
	}
	return fmt.Errorf("%w: %s: %s", ErrPushRefused, what, detail)
}
