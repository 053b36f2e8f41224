package hosts

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"strings"
	"time"
)

// Capability is what a host may be asked for.
type Capability uint8

// The capabilities of hosts.toml. A host without a capabilities key has
// all three.
const (
	// Pull fetches manifests and blobs by digest.
	Pull Capability = 1 << iota
	// Resolve turns a tag into a digest.
	Resolve
	// Push uploads; imgfs never pushes, but the value is valid.
	Push

	allCapabilities = Pull | Resolve | Push
)

// String names the capabilities as hosts.toml spells them.
func (c Capability) String() string {
	var names []string
	for _, n := range []struct {
		c    Capability
		name string
	}{{Pull, "pull"}, {Resolve, "resolve"}, {Push, "push"}} {
		if c&n.c != 0 {
			names = append(names, n.name)
		}
	}
	return strings.Join(names, ",")
}

// Host is one endpoint a registry's content can be read from.
type Host struct {
	// Scheme is "http" or "https".
	Scheme string
	// Host is host[:port].
	Host string
	// Path is the API root, "/v2" unless override_path gave another.
	Path string
	// Capabilities say which requests may go to this host.
	Capabilities Capability
	// Mirror is true for [host."…"] entries and false for the server.
	Mirror bool

	// SkipVerify, when set, overrides whether the host's certificate is
	// verified.
	SkipVerify *bool
	// RootCAs holds the CAs from ca, on top of the system's; nil when ca
	// is not set.
	RootCAs []*x509.Certificate
	// Certificates are the client key pairs from client.
	Certificates []tls.Certificate
	// Header is sent with every request to the host.
	Header http.Header
	// DialTimeout bounds a connect; zero means the default.
	DialTimeout time.Duration

	// Source names the file and key the host came from, for messages:
	// `/etc/containerd/certs.d/docker.io/hosts.toml host."https://m"`.
	// It is empty for the default server.
	Source string
}

// Allows reports whether the host may be asked for c.
func (h Host) Allows(c Capability) bool { return h.Capabilities&c == c }

// BaseURL returns the API root as a URL, e.g. "https://mirror:5000/v2".
func (h Host) BaseURL() string { return h.Scheme + "://" + h.Host + h.Path }

// HasTLSConfig reports whether the host sets any TLS option of its own.
func (h Host) HasTLSConfig() bool {
	return h.SkipVerify != nil || h.RootCAs != nil || len(h.Certificates) > 0
}

// ApplyTLS returns base amended by the host's TLS options: its CAs are
// trusted on top of base's (or the system's), its client certificates
// are offered, and skip_verify overrides. base is not modified.
func (h Host) ApplyTLS(base *tls.Config) *tls.Config {
	c := base.Clone()
	if h.SkipVerify != nil {
		c.InsecureSkipVerify = *h.SkipVerify
	}
	if h.RootCAs != nil {
		pool := c.RootCAs
		if pool == nil {
			var err error
			if pool, err = x509.SystemCertPool(); err != nil {
				pool = x509.NewCertPool()
			}
		} else {
			pool = pool.Clone()
		}
		for _, ca := range h.RootCAs {
			pool.AddCert(ca)
		}
		c.RootCAs = pool
	}
	c.Certificates = append(c.Certificates[:len(c.Certificates):len(c.Certificates)], h.Certificates...)
	return c
}

// Select returns the hosts that allow c, in order.
func Select(hosts []Host, c Capability) []Host {
	var out []Host
	for _, h := range hosts {
		if h.Allows(c) {
			out = append(out, h)
		}
	}
	return out
}
