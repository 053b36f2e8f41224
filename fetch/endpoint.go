package fetch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"
	"oras.land/oras-go/v2/registry/remote/retry"

	"github.com/imgfs/imgfs/fetch/hosts"
)

// endpoint is one host of a registry, a mirror or the server, with a
// client of its own: hosts differ in TLS settings and headers. All of a
// remote's endpoints share one token cache, keyed by host.
type endpoint struct {
	hosts.Host
	client *auth.Client
	scheme *schemeTransport
}

// newEndpoint builds the client for h. Mirrors are not retried: the next
// host is their retry, and asking a failing mirror again only delays it.
func newEndpoint(h hosts.Host, opts TransportOptions, cred auth.CredentialFunc, tokens auth.Cache) (*endpoint, error) {
	rt, st, err := newHostTransport(opts, h)
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
		Credential: markCredentialErrors(cred),
	}
	client.SetUserAgent(userAgent)
	for k, v := range h.Header {
		client.Header[k] = append([]string(nil), v...)
	}
	return &endpoint{Host: h, client: client, scheme: st}, nil
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
	plain := ep.plain()
	resp, err := r.send(ctx, ep, path, header)
	if err != nil && !plain && ep.plain() && ctx.Err() == nil {
		// The host turned out to speak plain HTTP (a loopback registry),
		// which the transport found under oras' auth client: ask again
		// with an http URL, so that oras accepts an http token realm.
		return r.send(ctx, ep, path, header)
	}
	return resp, err
}

// plain reports whether the endpoint is known to speak plain HTTP.
func (ep *endpoint) plain() bool { return ep.Scheme == "http" || ep.scheme.isPlain(ep.Host.Host) }

// send makes one GET of path, which may end in a query, on the endpoint.
func (r *Remote) send(ctx context.Context, ep *endpoint, path string, header http.Header) (*http.Response, error) {
	scopeRef := registry.Reference{Registry: ep.Host.Host, Repository: r.ref.Repository}
	ctx = auth.AppendRepositoryScope(ctx, scopeRef, auth.ActionPull)
	u := ep.BaseURL() + "/" + r.ref.Repository + "/" + path
	if ep.plain() {
		u = "http" + strings.TrimPrefix(u, ep.Scheme)
	}
	if ep.Mirror {
		// path may carry a query of its own (the referrers API's
		// artifactType filter).
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		u += sep + "ns=" + url.QueryEscape(r.ref.Registry)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	return ep.do(ctx, req, header)
}

// do sends req with header added through the endpoint's auth client. A
// failure is the context's cause once ctx has ended, else an auth error
// if that is what it was, with credentials redacted from the message.
func (ep *endpoint) do(ctx context.Context, req *http.Request, header http.Header) (*http.Response, error) {
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

// authError explains a failed request in one line naming host and the
// fix: no credentials, a credential helper that failed, a token service
// that refused the credentials or cannot be reached; anything else as a
// transport error.
func authError(host string, err error) error {
	var credErr *credentialError
	var tokenResp *errcode.ErrorResponse
	var urlErr *url.Error
	switch {
	case errors.Is(err, auth.ErrBasicCredentialNotFound):
		// The registry asked for a password and none was given: the same
		// answer as a 401, and permanent for the cache.
		return permanent(&AuthError{Host: host, Failure: NoCredentials,
			err: fmt.Errorf("%w: %s asked for credentials and none were given", ErrUnauthorized, host)})
	case errors.As(err, &credErr):
		return permanent(&AuthError{Host: host, Failure: HelperFailed,
			err: fmt.Errorf("%w: %s: the docker credential helper failed: %s", ErrUnauthorized, host, oneLine(credErr.err.Error(), 200))})
	case errors.As(err, &tokenResp) && tokenResp.URL != nil && tokenResp.URL.Host != hostOnly(host):
		realm := realmName(tokenResp.URL)
		if tokenResp.StatusCode == http.StatusUnauthorized || tokenResp.StatusCode == http.StatusForbidden {
			return permanent(&AuthError{Host: hostOnly(host), Failure: CredentialsRefused,
				err: fmt.Errorf("%w: %s: its token service %s refused the credentials (%d %s)", ErrUnauthorized, host, realm, tokenResp.StatusCode, http.StatusText(tokenResp.StatusCode))})
		}
		return fmt.Errorf("%w: %s: its token service %s answered %d %s; retry later", ErrUnexpectedStatus, host, realm, tokenResp.StatusCode, http.StatusText(tokenResp.StatusCode))
	case errors.As(err, &urlErr) && isOtherHost(urlErr.URL, host):
		u, _ := url.Parse(urlErr.URL)
		realm := realmName(u)
		reason := oneLine(redactQueries(urlErr.Err.Error()), 120)
		if errors.Is(urlErr.Err, syscall.ECONNREFUSED) {
			reason = "connection refused"
		}
		return fmt.Errorf("%w: %s: cannot reach its token service %s (%s); is the token service up? Retry later",
			ErrUnreachable, host, realm, reason)
	}
	return transportError(host, err)
}

// realmName names a token service by its URL without the query, which
// carries the scopes (and, for signed URLs, secrets).
func realmName(u *url.URL) string { return u.Scheme + "://" + u.Host + u.Path }

// hostOnly strips the "mirror " of an endpoint's role.
func hostOnly(role string) string { return strings.TrimPrefix(role, "mirror ") }

// isOtherHost reports whether rawURL is on another host than role's: a
// token service's, not the registry's.
func isOtherHost(rawURL, role string) bool {
	u, err := url.Parse(rawURL)
	return err == nil && u.Host != "" && u.Host != hostOnly(role)
}

// credentialError marks a failure of the docker credential store or
// helper, which oras reports like any other error.
type credentialError struct{ err error }

func (e *credentialError) Error() string { return "credentials: " + e.err.Error() }
func (e *credentialError) Unwrap() error { return e.err }

// markCredentialErrors wraps the errors of a credential function so that
// authError can tell them apart.
func markCredentialErrors(f auth.CredentialFunc) auth.CredentialFunc {
	if f == nil {
		return nil
	}
	return func(ctx context.Context, hostport string) (auth.Credential, error) {
		c, err := f(ctx, hostport)
		if err != nil {
			return c, &credentialError{err}
		}
		return c, nil
	}
}
