package socitest

import (
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

// ReferrersRegistry is go-containerregistry's in-process registry with the
// OCI 1.1 referrers API turned on, served over plain HTTP on 127.0.0.1.
// It stands in for a registry with the API: the Debian docker-registry
// (distribution 2.8) has none, and distribution v3.1.2 has none either.
// It keeps everything in memory, lists a manifest's referrers with the
// artifactType taken from their config's media type, ignores the
// artifactType filter, and sends no OCI-Subject header on a push.
type ReferrersRegistry struct {
	srv *httptest.Server
}

// NewReferrersRegistry starts a ReferrersRegistry; the caller closes it.
func NewReferrersRegistry() *ReferrersRegistry {
	quiet := log.New(io.Discard, "", 0)
	return &ReferrersRegistry{srv: httptest.NewServer(registry.New(registry.WithReferrersSupport(true), registry.Logger(quiet)))}
}

// StartReferrersRegistry starts a ReferrersRegistry for the test and
// closes it when the test ends.
func StartReferrersRegistry(t testing.TB) *ReferrersRegistry {
	r := NewReferrersRegistry()
	t.Cleanup(r.Close)
	return r
}

// Host returns "127.0.0.1:PORT".
func (r *ReferrersRegistry) Host() string { return strings.TrimPrefix(r.srv.URL, "http://") }

// Close stops the registry.
func (r *ReferrersRegistry) Close() { r.srv.Close() }
