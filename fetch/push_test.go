package fetch

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/fetch/hosts"
	"github.com/imgfs/imgfs/internal/oci"
	"github.com/imgfs/imgfs/internal/testregistry"
)

// pushRemote returns a Remote for repo on reg, with credentials given so
// that the developer's docker config stays out of it.
func pushRemote(t *testing.T, host, repo string) *Remote {
	t.Helper()
	r, err := NewRemote(Reference{Registry: host, Repository: repo, Tag: "v1"},
		RemoteOptions{TransportOptions: TransportOptions{PlainHTTP: true}, Username: "user", Password: "pass"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// artifact pushes a blob and a manifest naming subject, by digest, and
// returns the manifest's descriptor as a referrers list shows it.
func pushArtifact(t *testing.T, r *Remote, subject ocispec.Descriptor, blob []byte) (ocispec.Descriptor, PushedManifest) {
	t.Helper()
	ctx := callContext(t)
	empty := ocispec.DescriptorEmptyJSON
	if err := r.PushBlob(ctx, ocispec.Descriptor{MediaType: empty.MediaType, Digest: empty.Digest, Size: empty.Size}, bytes.NewReader(empty.Data)); err != nil {
		t.Fatal(err)
	}
	b := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	if err := r.PushBlob(ctx, b, bytes.NewReader(blob)); err != nil {
		t.Fatal(err)
	}
	ann := map[string]string{"org.example.blob": b.Digest.String()}
	m, err := json.Marshal(ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: oci.SOCIIndexV1,
		Config:       ocispec.Descriptor{MediaType: empty.MediaType, Digest: empty.Digest, Size: empty.Size},
		Layers:       []ocispec.Descriptor{b},
		Subject:      &ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
		Annotations:  ann,
	})
	if err != nil {
		t.Fatal(err)
	}
	pushed, err := r.PushManifest(ctx, ocispec.MediaTypeImageManifest, m, "")
	if err != nil {
		t.Fatal(err)
	}
	d := pushed.Desc
	d.ArtifactType, d.Annotations = oci.SOCIIndexV1, ann
	return d, pushed
}

// TestPushReferrersTagFallback pushes two referrers of one image to
// distribution 2.8, which has no referrers API, keeping the fallback tag
// as the spec says; Referrers then finds both through the tag.
func TestPushReferrersTagFallback(t *testing.T) {
	reg := testregistry.Start(t)
	p, err := reg.PushImage("app", "v1", testregistry.Image{Layers: []testregistry.Layer{
		testregistry.TarLayer(testregistry.Gzip, testregistry.BytesFile("hello", []byte("hello\n"))),
	}})
	if err != nil {
		t.Fatal(err)
	}
	r := pushRemote(t, reg.Host(), "app")
	ctx := callContext(t)
	if err := r.CheckPush(ctx); err != nil {
		t.Fatalf("CheckPush = %v", err)
	}

	first, pushed := pushArtifact(t, r, p.Manifest, []byte("first"))
	if pushed.SubjectIndexed {
		t.Fatalf("distribution 2.8 indexed the subject (OCI-Subject), but it has no referrers API")
	}
	if err := r.AddToReferrersTag(ctx, p.Manifest, first); err != nil {
		t.Fatal(err)
	}
	second, _ := pushArtifact(t, r, p.Manifest, []byte("second"))
	if err := r.AddToReferrersTag(ctx, p.Manifest, second); err != nil {
		t.Fatal(err)
	}
	// Adding one again replaces its entry rather than listing it twice.
	if err := r.AddToReferrersTag(ctx, p.Manifest, first); err != nil {
		t.Fatal(err)
	}
	got, err := r.Referrers(ctx, p.Manifest, oci.SOCIIndexV1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("Referrers = %d entries %+v, want the 2 pushed", len(got), got)
	}
	for _, want := range []ocispec.Descriptor{first, second} {
		found := false
		for _, g := range got {
			if g.Digest == want.Digest {
				found = true
				if g.ArtifactType != want.ArtifactType || g.Size != want.Size || g.MediaType != want.MediaType || g.Annotations["org.example.blob"] != want.Annotations["org.example.blob"] {
					t.Errorf("Referrers lists %+v, want %+v", g, want)
				}
			}
		}
		if !found {
			t.Errorf("Referrers lacks %s", want.Digest)
		}
	}
	// The blobs and manifests are where a reader finds them.
	if _, data, err := reg.GetManifest("app", first.Digest.String()); err != nil || digest.FromBytes(data) != first.Digest {
		t.Errorf("GET manifest %s: %v", first.Digest, err)
	}
}

// TestPushBlobSkipsExisting: a blob the registry has is not uploaded again.
func TestPushBlobSkipsExisting(t *testing.T) {
	var posts atomic.Int32
	blob := []byte("blob bytes")
	d := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	r, _ := newTestRemote(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch {
		case req.Method == http.MethodHead && req.URL.Path == "/v2/r/blobs/"+d.Digest.String():
			w.Header().Set("Content-Length", "10")
			w.WriteHeader(http.StatusOK)
		case req.Method == http.MethodPost:
			posts.Add(1)
			w.WriteHeader(http.StatusInternalServerError)
		default:
			http.NotFound(w, req)
		}
	}), RemoteOptions{})
	if err := r.PushBlob(callContext(t), d, bytes.NewReader(blob)); err != nil {
		t.Fatal(err)
	}
	if posts.Load() != 0 {
		t.Errorf("%d uploads started for a blob the registry has", posts.Load())
	}
}

// TestPushManifestSubjectIndexed: a registry with the referrers API
// answers a manifest with a subject with OCI-Subject; only the subject's
// own digest counts.
func TestPushManifestSubjectIndexed(t *testing.T) {
	subject := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("image"), Size: 5}
	m, _ := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.DescriptorEmptyJSON, Subject: &subject,
	})
	for _, tc := range []struct {
		header string
		want   bool
	}{{subject.Digest.String(), true}, {"", false}, {digest.FromString("other").String(), false}} {
		var gotType string
		r, _ := newTestRemote(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.Method != http.MethodPut || !strings.HasPrefix(req.URL.Path, "/v2/r/manifests/sha256:") {
				http.NotFound(w, req)
				return
			}
			gotType = req.Header.Get("Content-Type")
			body, _ := io.ReadAll(req.Body)
			w.Header().Set("Docker-Content-Digest", digest.FromBytes(body).String())
			if tc.header != "" {
				w.Header().Set("OCI-Subject", tc.header)
			}
			w.WriteHeader(http.StatusCreated)
		}), RemoteOptions{})
		pushed, err := r.PushManifest(callContext(t), ocispec.MediaTypeImageManifest, m, "")
		if err != nil {
			t.Fatal(err)
		}
		if pushed.SubjectIndexed != tc.want || pushed.Desc.Digest != digest.FromBytes(m) || gotType != ocispec.MediaTypeImageManifest {
			t.Errorf("OCI-Subject %q: pushed %+v (Content-Type %q), want SubjectIndexed %v", tc.header, pushed, gotType, tc.want)
		}
	}
}

// TestPushRefusals: each way a registry can refuse or mislead a push is a
// one-line error naming what was pushed and the status or the fault.
func TestPushRefusals(t *testing.T) {
	blob := []byte("blob bytes")
	d := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	other := digest.FromString("other")
	tests := []struct {
		name    string
		post    func(w http.ResponseWriter)
		put     func(w http.ResponseWriter)
		wantErr error
		want    []string
	}{
		{
			name:    "denied",
			post:    func(w http.ResponseWriter) { w.WriteHeader(http.StatusForbidden) },
			wantErr: ErrUnauthorized,
			want:    []string{"push blob " + d.Digest.String(), "403 Forbidden", "do not allow pushing"},
		},
		{
			name: "upload elsewhere",
			post: func(w http.ResponseWriter) {
				w.Header().Set("Location", "http://203.0.113.9/upload?x=1")
				w.WriteHeader(http.StatusAccepted)
			},
			wantErr: ErrUnsupported,
			want:    []string{"203.0.113.9", "imgfs uploads only to the registry"},
		},
		{
			name: "no location",
			post: func(w http.ResponseWriter) { w.WriteHeader(http.StatusAccepted) },
			want: []string{"0 Location headers"},
		},
		{
			name: "put refused",
			post: func(w http.ResponseWriter) {
				w.Header().Set("Location", "/v2/r/blobs/uploads/u1?_state=abc")
				w.WriteHeader(http.StatusAccepted)
			},
			put: func(w http.ResponseWriter) {
				w.WriteHeader(http.StatusBadRequest)
				w.Write([]byte(`{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match\nuploaded content"}]}`))
			},
			wantErr: ErrPushRefused,
			want:    []string{"push refused: blob " + d.Digest.String(), "400 Bad Request: DIGEST_INVALID: provided digest did not match uploaded content"},
		},
		{
			name: "wrong digest stored",
			post: func(w http.ResponseWriter) {
				w.Header().Set("Location", "/v2/r/blobs/uploads/u1")
				w.WriteHeader(http.StatusAccepted)
			},
			put: func(w http.ResponseWriter) {
				w.Header().Set("Docker-Content-Digest", other.String())
				w.WriteHeader(http.StatusCreated)
			},
			want: []string{"registry says it stored " + other.String()},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var putBody []byte
			var putQuery string
			r, _ := newTestRemote(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				switch req.Method {
				case http.MethodHead:
					http.NotFound(w, req)
				case http.MethodPost:
					tc.post(w)
				case http.MethodPut:
					putBody, _ = io.ReadAll(req.Body)
					putQuery = req.URL.RawQuery
					tc.put(w)
				}
			}), RemoteOptions{})
			err := r.PushBlob(callContext(t), d, bytes.NewReader(blob))
			if err == nil {
				t.Fatal("PushBlob succeeded")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v is not %v", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if tc.put == nil {
				return
			}
			if !bytes.Equal(putBody, blob) || !strings.Contains(putQuery, "digest="+strings.ReplaceAll(d.Digest.String(), ":", "%3A")) {
				t.Errorf("PUT ?%s with %q, want the digest in the query and the blob", putQuery, putBody)
			}
			if tc.name == "put refused" && !strings.Contains(putQuery, "_state=abc") {
				t.Errorf("PUT ?%s dropped the upload's own query", putQuery)
			}
		})
	}
}

// TestPushTokenRegistryPullOnly: a token service that grants only pull
// turns a push away with an AuthError naming the blob and the status.
func TestPushTokenRegistryPullOnly(t *testing.T) {
	plain := testregistry.Start(t)
	issuer := testregistry.StartTokenIssuer(t, t.TempDir(), map[string]string{"alice": "s3cret"})
	reg := testregistry.StartTokenAuth(t, plain, issuer)
	r, err := NewRemote(Reference{Registry: reg.Host(), Repository: "app", Tag: "v1"},
		RemoteOptions{TransportOptions: TransportOptions{PlainHTTP: true}, Username: "alice", Password: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	var auth *AuthError
	if err := r.CheckPush(callContext(t)); !errors.As(err, &auth) || !strings.Contains(err.Error(), "app: start upload: 401") {
		t.Errorf("CheckPush with a pull-only token = %v, want an AuthError naming the repository and 401", err)
	}
	blob := []byte("blob bytes")
	d := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	err = r.PushBlob(callContext(t), d, bytes.NewReader(blob))
	if !errors.As(err, &auth) || !strings.Contains(err.Error(), d.Digest.String()) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("PushBlob with a pull-only token = %v, want an AuthError naming the blob and 401", err)
	}
	if issuer.Issued() == 0 {
		t.Errorf("no token was asked for")
	}
}

// TestPushNeverToMirror: with a mirror in hosts.toml, pushes go to the
// server alone.
func TestPushNeverToMirror(t *testing.T) {
	var mirrorHits atomic.Int32
	_, mirror := newTestRemote(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mirrorHits.Add(1)
		http.NotFound(w, req)
	}), RemoteOptions{})
	reg := testregistry.Start(t)
	r, err := NewRemote(Reference{Registry: reg.Host(), Repository: "app", Tag: "v1"}, RemoteOptions{
		TransportOptions: TransportOptions{PlainHTTP: true}, Username: "user", Password: "pass",
		Hosts: []hosts.Host{
			{Scheme: "http", Host: strings.TrimPrefix(mirror.URL, "http://"), Path: "/v2", Capabilities: hosts.Pull | hosts.Resolve | hosts.Push, Mirror: true},
			{Scheme: "http", Host: reg.Host(), Path: "/v2", Capabilities: hosts.Pull | hosts.Resolve | hosts.Push},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := reg.PushImage("app", "v1", testregistry.Image{})
	if err != nil {
		t.Fatal(err)
	}
	referrer, _ := pushArtifact(t, r, p.Manifest, []byte("blob bytes"))
	if err := r.AddToReferrersTag(callContext(t), p.Manifest, referrer); err != nil {
		t.Fatal(err)
	}
	if mirrorHits.Load() != 0 {
		t.Errorf("the mirror got %d requests of a push", mirrorHits.Load())
	}
}

func TestCheckTag(t *testing.T) {
	for tag, ok := range map[string]bool{
		"v1": true, "latest-soci": true, "_x": true, strings.Repeat("a", 128): true,
		"": false, "-x": false, ".x": false, "a:b": false, "a/b": false, strings.Repeat("a", 129): false,
	} {
		if err := CheckTag(tag); (err == nil) != ok {
			t.Errorf("CheckTag(%q) = %v, want ok %v", tag, err, ok)
		}
	}
}
