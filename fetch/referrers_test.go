package fetch

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/fetch/hosts"
	"github.com/imgfs/imgfs/internal/errdefs"
	"github.com/imgfs/imgfs/internal/oci"
)

// The subject and referrers the spec registry below serves.
var (
	refSubject = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("subject"), Size: 100}
	refSOCI    = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("soci"), Size: 200,
		ArtifactType: oci.SOCIIndexV1, Annotations: map[string]string{"com.amazon.soci.build-tool-identifier": "test"}}
	refSig = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("sig"), Size: 300,
		ArtifactType: signatureType}
	// refBlob is a SOCI-typed entry that is not a manifest: no client
	// pushes one as a referrer, so it is skipped.
	refBlob = ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromString("blob"), Size: 400,
		ArtifactType: oci.SOCIIndexV1}
)

func referrersIndex(t *testing.T, entries ...ocispec.Descriptor) []byte {
	t.Helper()
	b, err := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
		Manifests: append([]ocispec.Descriptor{}, entries...)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// specRegistry answers for repository "r" as the OCI distribution spec 1.1
// says: the referrers API when api is set, the <alg>-<ref> tag otherwise.
// With filter set, the API applies the artifactType filter and says so in
// OCI-Filters-Applied; without, it ignores it, as the spec allows.
type specRegistry struct {
	t       *testing.T
	entries []ocispec.Descriptor
	api     bool
	filter  bool

	mu       sync.Mutex
	requests []string // path?query of each request
}

func (s *specRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.URL.RequestURI())
	s.mu.Unlock()
	switch r.URL.Path {
	case "/v2/r/referrers/" + refSubject.Digest.String():
		if !s.api {
			http.NotFound(w, r)
			return
		}
		entries := s.entries
		if at := r.URL.Query().Get("artifactType"); at != "" && s.filter {
			entries = nil
			for _, d := range s.entries {
				if d.ArtifactType == at {
					entries = append(entries, d)
				}
			}
			w.Header().Set("OCI-Filters-Applied", "artifactType")
		}
		w.Header().Set("Content-Type", ocispec.MediaTypeImageIndex)
		w.Write(referrersIndex(s.t, entries...))
	case "/v2/r/manifests/sha256-" + refSubject.Digest.Encoded():
		if s.api || s.entries == nil {
			http.NotFound(w, r)
			return
		}
		body := referrersIndex(s.t, s.entries...)
		w.Header().Set("Content-Type", ocispec.MediaTypeImageIndex)
		w.Header().Set("Docker-Content-Digest", digest.FromBytes(body).String())
		w.Write(body)
	default:
		http.NotFound(w, r)
	}
}

func (s *specRegistry) sent() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// TestReferrersSpec lists referrers from a registry that answers as the
// spec says, with and without the API, honouring the filter or not.
func TestReferrersSpec(t *testing.T) {
	all := []ocispec.Descriptor{refSOCI, refSig, refBlob}
	tests := []struct {
		name         string
		reg          *specRegistry
		artifactType string
		want         []ocispec.Descriptor
		wantRequests int // 1: the API alone; 2: the API, then the tag
	}{
		{"api filters", &specRegistry{entries: all, api: true, filter: true}, oci.SOCIIndexV1, []ocispec.Descriptor{refSOCI}, 1},
		{"api ignores the filter", &specRegistry{entries: all, api: true}, oci.SOCIIndexV1, []ocispec.Descriptor{refSOCI}, 1},
		{"api, no filter", &specRegistry{entries: all, api: true}, "", []ocispec.Descriptor{refSOCI, refSig}, 1},
		{"api, none", &specRegistry{api: true}, oci.SOCIIndexV1, nil, 1},
		{"api, none of the type", &specRegistry{entries: []ocispec.Descriptor{refSig}, api: true, filter: true}, oci.SOCIIndexV1, nil, 1},
		{"tag", &specRegistry{entries: all}, oci.SOCIIndexV1, []ocispec.Descriptor{refSOCI}, 2},
		{"tag, no filter", &specRegistry{entries: all}, "", []ocispec.Descriptor{refSOCI, refSig}, 2},
		{"no tag", &specRegistry{}, oci.SOCIIndexV1, nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.reg.t = t
			remote, _ := newTestRemote(t, tt.reg, RemoteOptions{})
			got, err := remote.Referrers(callContext(t), refSubject, tt.artifactType)
			if err != nil {
				t.Fatalf("Referrers = %v", err)
			}
			if got == nil || len(got) != len(tt.want) {
				t.Fatalf("Referrers = %v, want %v", got, tt.want)
			}
			for i := range got {
				g, w := got[i], tt.want[i]
				if g.Digest != w.Digest || g.ArtifactType != w.ArtifactType || !mapsEqual(g.Annotations, w.Annotations) {
					t.Errorf("referrer %d = %+v, want %+v", i, g, w)
				}
			}
			sent := tt.reg.sent()
			if len(sent) != tt.wantRequests {
				t.Errorf("sent %v, want %d requests", sent, tt.wantRequests)
			}
			if q := "artifactType=" + url.QueryEscape(tt.artifactType); tt.artifactType != "" && !strings.HasSuffix(sent[0], "?"+q) {
				t.Errorf("API request %s lacks ?%s", sent[0], q)
			}
		})
	}
}

// TestReferrersThroughMirror checks that a mirror's request keeps the
// artifactType filter and gains ns=, and that a mirror without the API
// sends the request on to the server.
func TestReferrersThroughMirror(t *testing.T) {
	mirror := &specRegistry{t: t}
	server := &specRegistry{t: t, entries: []ocispec.Descriptor{refSOCI, refSig}, api: true, filter: true}
	ms, ss := httptest.NewServer(mirror), httptest.NewServer(server)
	t.Cleanup(ms.Close)
	t.Cleanup(ss.Close)
	host := func(srv *httptest.Server, m bool) hosts.Host {
		return hosts.Host{Scheme: "http", Host: strings.TrimPrefix(srv.URL, "http://"), Path: "/v2", Capabilities: all, Mirror: m}
	}
	remote := routedRemote(t, host(ms, true), host(ss, false))
	got, err := remote.Referrers(callContext(t), refSubject, oci.SOCIIndexV1)
	if err != nil || len(got) != 1 || got[0].Digest != refSOCI.Digest {
		t.Fatalf("Referrers = %v, %v; want %s", got, err, refSOCI.Digest)
	}
	sent := mirror.sent()
	want := "/v2/r/referrers/" + refSubject.Digest.String() + "?artifactType=application%2Fvnd.amazon.soci.index.v1%2Bjson&ns=origin.example"
	if len(sent) != 1 || sent[0] != want {
		t.Errorf("mirror was sent %v, want [%s]", sent, want)
	}
}

// TestReferrersHostile feeds Referrers hostile answers: each is refused
// with one line that says what was wrong.
func TestReferrersHostile(t *testing.T) {
	index := func(mediaType string, entries ...ocispec.Descriptor) []byte {
		b, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: mediaType, Manifests: entries})
		return b
	}
	many := make([]ocispec.Descriptor, MaxReferrers+1)
	for i := range many {
		many[i] = refSOCI
	}
	badDigest := refSig
	badDigest.Digest = "sha256:../../../etc/passwd"
	badSize := refSig
	badSize.Size = -1
	badType := refSig
	badType.ArtifactType = "not a media type"
	huge := append(index(ocispec.MediaTypeImageIndex, refSOCI), bytes.Repeat([]byte(" "), oci.MaxMetadataSize)...)
	tests := []struct {
		name        string
		path        string // "referrers" (the API) or "tag"
		contentType string
		body        []byte
		status      int
		header      http.Header
		wantIs      error
		wantMsg     string
	}{
		{name: "docker list", body: index(oci.DockerManifestList, refSOCI), wantIs: ErrUnsupported,
			wantMsg: `media type "application/vnd.docker.distribution.manifest.list.v2+json" is not an OCI image index`},
		{name: "manifest by content type", contentType: ocispec.MediaTypeImageManifest, body: []byte(`{"schemaVersion":2,"manifests":[]}`),
			wantIs: ErrUnsupported, wantMsg: "is not an OCI image index"},
		{name: "not json", body: []byte("<html>hello</html>"), wantIs: ErrUnsupported, wantMsg: "not a JSON index"},
		{name: "over the count", body: index(ocispec.MediaTypeImageIndex, many...), wantIs: errdefs.ErrTooLarge,
			wantMsg: "registry lists 1025 referrers, over the limit of 1024"},
		{name: "over the size", body: huge, wantIs: errdefs.ErrTooLarge, wantMsg: "over the 4 MiB limit"},
		{name: "bad digest", body: index(ocispec.MediaTypeImageIndex, refSOCI, badDigest), wantIs: oci.ErrInvalidDigest, wantMsg: "entry 1: invalid digest"},
		{name: "negative size", body: index(ocispec.MediaTypeImageIndex, badSize), wantMsg: "entry 0: invalid size -1"},
		{name: "bad artifact type", body: index(ocispec.MediaTypeImageIndex, badType), wantIs: oci.ErrInvalidMediaType, wantMsg: "entry 0: artifact type"},
		{name: "bad request", status: http.StatusBadRequest, body: []byte(`{"errors":[{"code":"DIGEST_INVALID","message":"bad\ndigest"}]}`),
			wantIs: ErrUnexpectedStatus, wantMsg: "400 Bad Request: bad digest"},
		{name: "tag with another digest", path: "tag", body: index(ocispec.MediaTypeImageIndex, refSOCI),
			header: http.Header{"Docker-Content-Digest": {digest.FromString("other").String()}}, wantIs: errdefs.ErrDigestMismatch, wantMsg: "registry sent an index hashing to"},
		{name: "tag with a bad entry", path: "tag", body: index(ocispec.MediaTypeImageIndex, badDigest), wantIs: oci.ErrInvalidDigest,
			wantMsg: "(tag sha256-" + refSubject.Digest.Encoded() + "): entry 0: invalid digest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := "/v2/r/referrers/" + refSubject.Digest.String()
			if tt.path == "tag" {
				want = "/v2/r/manifests/sha256-" + refSubject.Digest.Encoded()
			}
			remote, _ := newTestRemote(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != want {
					http.NotFound(w, r)
					return
				}
				for k, v := range tt.header {
					w.Header()[k] = v
				}
				ct := tt.contentType
				if ct == "" {
					ct = ocispec.MediaTypeImageIndex
				}
				w.Header().Set("Content-Type", ct)
				if tt.status != 0 {
					w.WriteHeader(tt.status)
				}
				w.Write(tt.body)
			}), RemoteOptions{})
			got, err := remote.Referrers(callContext(t), refSubject, oci.SOCIIndexV1)
			if err == nil {
				t.Fatalf("Referrers = %v, want an error", got)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %q is not %v", err, tt.wantIs)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.wantMsg) || strings.Contains(msg, "\n") {
				t.Errorf("error %q, want one line containing %q", msg, tt.wantMsg)
			}
		})
	}
}

func TestReferrersTag(t *testing.T) {
	sha512 := digest.SHA512.FromString("subject")
	for _, tt := range []struct {
		subject digest.Digest
		want    string
	}{
		{refSubject.Digest, "sha256-" + refSubject.Digest.Encoded()},
		{sha512, "sha512-" + sha512.Encoded()[:64]},
	} {
		if got := referrersTag(tt.subject); got != tt.want {
			t.Errorf("referrersTag(%s) = %s, want %s", tt.subject, got, tt.want)
		}
	}
}

// TestReferrersRefusesBadArguments checks the caller's subject and filter
// before anything is sent.
func TestReferrersRefusesBadArguments(t *testing.T) {
	remote, _ := newTestRemote(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("sent %s", r.URL)
	}), RemoteOptions{})
	bad := refSubject
	bad.Digest = "sha256:abc"
	if _, err := remote.Referrers(callContext(t), bad, ""); !errors.Is(err, oci.ErrInvalidDigest) {
		t.Errorf("bad subject: %v, want ErrInvalidDigest", err)
	}
	if _, err := remote.Referrers(callContext(t), refSubject, "soci&n=1"); !errors.Is(err, oci.ErrInvalidMediaType) {
		t.Errorf("bad artifact type: %v, want ErrInvalidMediaType", err)
	}
}
