package fetch

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/retry"

	"github.com/imgfs/imgfs/fetch/hosts"
)

// userAgent identifies imgfs to registries.
const userAgent = "imgfs/0.1"

// RemoteOptions configure a Remote.
type RemoteOptions struct {
	TransportOptions

	// Username and Password are the registry's credentials. They are
	// sent to the registry's server only, never to a mirror. With no
	// Username, the docker config's credentials and helpers apply.
	Username, Password string

	// HostsDir is a containerd hosts directory (certs.d) that says which
	// mirrors to try before the registry's server; "" means none.
	HostsDir string
	// Hosts, when not nil, is used instead of HostsDir.
	Hosts []hosts.Host
}

// Remote reads one repository of one registry, through the hosts that
// hosts.toml names for it: mirrors first, in order, then the server. It
// rides on oras-go's auth client, so bearer and basic challenges, the
// token cache, docker config credentials and helpers, and retries with
// backoff all apply to every request, including the bounded range reads
// lazy blobs make.
type Remote struct {
	ref       Reference
	endpoints []*endpoint
	log       *slog.Logger
	routes    routes
}

// NewRemote returns a client for ref's repository.
func NewRemote(ref Reference, opts RemoteOptions) (*Remote, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hs := opts.Hosts
	if hs == nil {
		scheme := "https"
		if opts.PlainHTTP {
			scheme = "http"
		}
		var err error
		if hs, err = hosts.Load(opts.HostsDir, ref.Registry, hosts.Defaults{Scheme: scheme}); err != nil {
			return nil, fmt.Errorf("hosts.toml: %w", err)
		}
	}
	if len(hs) == 0 {
		return nil, fmt.Errorf("hosts.toml for %s names no host", ref.Registry)
	}
	server := hs[len(hs)-1]
	var cred auth.CredentialFunc
	switch {
	case opts.Username != "":
		cred = auth.StaticCredential(server.Host, auth.Credential{Username: opts.Username, Password: opts.Password})
	default:
		store, err := credentials.NewStoreFromDocker(credentials.StoreOptions{})
		if err != nil {
			log.Warn("ignoring docker credentials", "error", err)
		} else {
			cred = credentials.Credential(store)
		}
	}
	r := &Remote{ref: ref, log: log}
	tokens := newRenewOnceCache()
	for _, h := range hs {
		ep, err := newEndpoint(h, opts.TransportOptions, cred, tokens)
		if err != nil {
			return nil, err
		}
		r.endpoints = append(r.endpoints, ep)
	}
	return r, nil
}

// Reference returns the reference the remote was made for.
func (r *Remote) Reference() Reference { return r.ref }

// Source names the repository the remote reads, as the cache's logs and
// read errors name where bad bytes came from.
func (r *Remote) Source() string { return r.ref.Name() }

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
