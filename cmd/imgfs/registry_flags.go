package main

import (
	"fmt"
	"os"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/pflag"

	"github.com/imgfs/imgfs/fetch"
	"github.com/imgfs/imgfs/fetch/hosts"
)

// registryFlags are shared by every command that talks to a registry. The
// names are ctr's and skopeo's.
type registryFlags struct {
	plainHTTP     bool
	skipVerify    bool
	tlsCACert     string
	user          string
	passwordStdin bool
	httpTrace     bool
	hostsDir      string
	platforms     []string
	allPlatforms  bool
}

func (r *registryFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&r.plainHTTP, "plain-http", false, "talk HTTP, not HTTPS, to the registry (loopback registries fall back to HTTP by themselves)")
	fs.BoolVar(&r.skipVerify, "skip-verify", false, "do not verify the registry's TLS certificate")
	fs.StringVar(&r.tlsCACert, "tlscacert", "", "PEM `file` of CA certificates to trust for the registry")
	fs.StringVarP(&r.user, "user", "u", "", "registry credentials as `user[:password]`; without a password it is read from standard input")
	fs.BoolVar(&r.passwordStdin, "password-stdin", false, "read the --user password from standard input (keeps it off the command line)")
	fs.StringVar(&r.hostsDir, "hosts-dir", hosts.DefaultDir(), "containerd hosts `directory` (certs.d): <registry>/hosts.toml names mirrors to try first, and TLS settings")
	fs.BoolVar(&r.httpTrace, "http-trace", false, "log DNS, connect, TLS and first-byte timings of each request (with --debug)")
	fs.StringSliceVar(&r.platforms, "platform", nil, "platform to select, e.g. linux/arm64/v8 (repeatable; default: this host's)")
	fs.BoolVar(&r.allPlatforms, "all-platforms", false, "select every platform of an index")
}

// remote parses ref and returns a client for its repository. A response
// body that sends nothing for idleTimeout fails.
func (r *registryFlags) remote(g *globalFlags, ref string, idleTimeout time.Duration) (fetch.Reference, *fetch.Remote, error) {
	parsed, err := fetch.ParseReference(ref)
	if err != nil {
		return fetch.Reference{}, nil, usageError{err}
	}
	remote, err := r.remoteFor(g, parsed, idleTimeout)
	return parsed, remote, err
}

// remoteFor returns a client for the repository of ref, already parsed.
func (r *registryFlags) remoteFor(g *globalFlags, ref fetch.Reference, idleTimeout time.Duration) (*fetch.Remote, error) {
	user, password, err := r.credentials(os.Stdin)
	if err != nil {
		return nil, err
	}
	remote, err := fetch.NewRemote(ref, fetch.RemoteOptions{
		TransportOptions: fetch.TransportOptions{
			PlainHTTP:   r.plainHTTP,
			SkipVerify:  r.skipVerify,
			TLSCACert:   r.tlsCACert,
			HTTPTrace:   r.httpTrace,
			IdleTimeout: idleTimeout,
			Logger:      g.logger,
		},
		Username: user,
		Password: password,
		HostsDir: r.hostsDir,
	})
	if err != nil {
		return nil, usageError{err}
	}
	return remote, nil
}

func (r *registryFlags) parsePlatforms() ([]ocispec.Platform, error) {
	ps, err := fetch.ParsePlatforms(r.platforms)
	if err != nil {
		return nil, usageError{fmt.Errorf("--platform: %w", err)}
	}
	return ps, nil
}
