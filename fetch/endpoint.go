package fetch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/retry"

	"github.com/imgfs/imgfs/fetch/hosts"
)

// endpoint is one host of a registry, a mirror or the server, with a
// client of its own: hosts differ in TLS settings and headers. All of a
// remote's endpoints share one token cache, keyed by host.
type endpoint struct {
	hosts.Host
	client *auth.Client
}

// newEndpoint builds the client for h. Mirrors are not retried: the next
// host is their retry, and asking a failing mirror again only delays it.
func newEndpoint(h hosts.Host, opts TransportOptions, cred auth.CredentialFunc, tokens auth.Cache) (*endpoint, error) {
	rt, err := newHostTransport(opts, h)
	if err != nil {
		return nil, err
	}
	policy := func() retry.Policy { return noStallRetry{retry.DefaultPolicy} }
	if h.Mirror {
		policy = func() retry.Policy { return mirrorRetry{retry.DefaultPolicy} }
	}
	client := &auth.Client{
		Client:     &http.Client{Transport: &retry.Transport{Base: rt, Policy: policy}},
		Cache:      tokens,
		Credential: cred,
	}
	client.SetUserAgent(userAgent)
	for k, v := range h.Header {
		client.Header[k] = append([]string(nil), v...)
	}
	return &endpoint{Host: h, client: client}, nil
}

// role names the endpoint in logs and errors.
func (ep *endpoint) role() string {
	if ep.Mirror {
		return "mirror " + ep.Host.Host
	}
	return ep.Host.Host
}

// sender names the endpoint as the subject of a sentence about what it
// sent: "registry", or "mirror HOST".
func (ep *endpoint) sender() string {
	if ep.Mirror {
		return ep.role()
	}
	return "registry"
}

// get sends a GET for the repository path (e.g. "manifests/latest") to the
// endpoint, with the pull scope oras needs to ask for a token. Requests
// to a mirror carry ns=<registry>, as containerd's do, so that a mirror
// of several registries knows which one is meant.
func (r *Remote) get(ctx context.Context, ep *endpoint, path string, header http.Header) (*http.Response, error) {
	scopeRef := registry.Reference{Registry: ep.Host.Host, Repository: r.ref.Repository}
	ctx = auth.AppendRepositoryScope(ctx, scopeRef, auth.ActionPull)
	u := ep.BaseURL() + "/" + r.ref.Repository + "/" + path
	if ep.Mirror {
		u += "?ns=" + url.QueryEscape(r.ref.Registry)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := ep.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, authError(ep.role(), redactError(err))
	}
	return resp, nil
}

// mirrorRetry retries a mirror only when it asks to be (429 with
// Retry-After, 408); on errors and 5xx the next host is tried at once.
type mirrorRetry struct{ retry.Policy }

func (p mirrorRetry) Retry(attempt int, resp *http.Response, err error) (time.Duration, error) {
	if err != nil || resp == nil || resp.StatusCode >= 500 {
		return -1, nil
	}
	return p.Policy.Retry(attempt, resp, err)
}

// authError explains a failed request: a credential or token problem in
// one line naming host and the fix, anything else as a transport error.
func authError(host string, err error) error {
	if errors.Is(err, auth.ErrBasicCredentialNotFound) {
		// The registry asked for a password and none was given: the same
		// answer as a 401, and permanent for the cache.
		return permanent(fmt.Errorf("%w: %s asked for credentials and none were given; check credentials (--user, or docker login %s)",
			ErrUnauthorized, host, host))
	}
	return transportError(host, err)
}
