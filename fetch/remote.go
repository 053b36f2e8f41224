package fetch

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/retry"
)

// userAgent identifies imgfs to registries.
const userAgent = "imgfs/0.1"

// RemoteOptions configure a Remote.
type RemoteOptions struct {
	TransportOptions

	// User is "user[:password]" for the registry. Without a password, one
	// line is read from Stdin.
	User  string
	Stdin io.Reader
}

// Remote reads one repository of one registry. It rides on oras-go's auth
// client, so bearer and basic challenges, the token cache, docker config
// credentials and helpers, and retries with backoff all apply to every
// request, including the bounded range reads lazy blobs make.
type Remote struct {
	ref    Reference
	scheme string // "http" with PlainHTTP, else "https"
	client *auth.Client
	log    *slog.Logger
}

// NewRemote returns a client for ref's repository.
func NewRemote(ref Reference, opts RemoteOptions) (*Remote, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rt, err := newTransport(opts.TransportOptions)
	if err != nil {
		return nil, err
	}
	client := &auth.Client{
		Client: &http.Client{Transport: &retry.Transport{Base: rt, Policy: func() retry.Policy { return noStallRetry{retry.DefaultPolicy} }}},
		Cache:  auth.NewCache(),
	}
	client.SetUserAgent(userAgent)
	switch {
	case opts.User != "":
		cred, err := parseUser(opts.User, opts.Stdin)
		if err != nil {
			return nil, err
		}
		client.Credential = auth.StaticCredential(ref.APIHost(), cred)
	default:
		store, err := credentials.NewStoreFromDocker(credentials.StoreOptions{})
		if err != nil {
			log.Warn("ignoring docker credentials", "error", err)
		} else {
			client.Credential = credentials.Credential(store)
		}
	}
	scheme := "https"
	if opts.PlainHTTP {
		scheme = "http"
	}
	return &Remote{ref: ref, scheme: scheme, client: client, log: log}, nil
}

// maxPasswordLine bounds the line read from standard input as a password.
const maxPasswordLine = 64 << 10

func parseUser(user string, stdin io.Reader) (auth.Credential, error) {
	name, pass, ok := strings.Cut(user, ":")
	if name == "" {
		return auth.EmptyCredential, fmt.Errorf("--user %q: want user[:password]", user)
	}
	if !ok {
		if stdin == nil {
			return auth.EmptyCredential, fmt.Errorf("--user %s: no password given and no standard input to read it from", name)
		}
		line, err := bufio.NewReader(io.LimitReader(stdin, maxPasswordLine)).ReadString('\n')
		if err != nil && line == "" {
			return auth.EmptyCredential, fmt.Errorf("--user %s: reading password from standard input: %w", name, err)
		}
		pass = strings.TrimRight(line, "\r\n")
	}
	return auth.Credential{Username: name, Password: pass}, nil
}

// Reference returns the reference the remote was made for.
func (r *Remote) Reference() Reference { return r.ref }

// Source names the repository the remote reads, as the cache's logs and
// read errors name where bad bytes came from.
func (r *Remote) Source() string { return r.ref.Name() }

// get sends a GET for the repository path (e.g. "manifests/latest") with
// the pull scope oras needs to ask for a token.
func (r *Remote) get(ctx context.Context, path string, header http.Header) (*http.Response, error) {
	host := r.ref.APIHost()
	scopeRef := registry.Reference{Registry: host, Repository: r.ref.Repository}
	ctx = auth.AppendRepositoryScope(ctx, scopeRef, auth.ActionPull)
	url := r.scheme + "://" + host + "/v2/" + r.ref.Repository + "/" + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := r.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		if errors.Is(err, auth.ErrBasicCredentialNotFound) {
			// The registry asked for a password and none was given: the
			// same answer as a 401, and permanent for the cache.
			return nil, permanent(fmt.Errorf("%w: %s asked for credentials and none were given; check credentials (--user, or docker login %s)",
				ErrUnauthorized, r.ref.Registry, r.ref.Registry))
		}
		// Redact first: the wrapping below copies the message.
		return nil, transportError(r.ref.Registry, redactError(err))
	}
	return resp, nil
}

// noStallRetry is oras' retry policy, which backs off on 408, 429 and 5xx
// (honouring Retry-After on 429) and on connection resets, and leaves 401,
// 403 and 404 alone; except that a registry that stalled is not asked
// again, since each attempt would wait out the idle timeout once more.
type noStallRetry struct{ retry.Policy }

func (p noStallRetry) Retry(attempt int, resp *http.Response, err error) (time.Duration, error) {
	var stall *stallError
	if errors.As(err, &stall) {
		return -1, nil
	}
	return p.Policy.Retry(attempt, resp, err)
}

// decodeJSON decodes at most limit bytes of r into v.
func decodeJSON(r io.Reader, v any, limit int64) error {
	return json.NewDecoder(io.LimitReader(r, limit)).Decode(v)
}
