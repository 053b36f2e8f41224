package fetch

import (
	"slices"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/fetch/hosts"
	"github.com/imgfs/imgfs/internal/oci"
	"github.com/imgfs/imgfs/internal/testregistry"
)

// referrersFixture is an image with two referrers pushed to reg: a v1 SOCI
// index and, of another artifact type, a signature.
type referrersFixture struct {
	image, soci, sig ocispec.Descriptor
	remote           *Remote
}

const signatureType = "application/vnd.dev.cosign.artifact.sig.v1+json"

func pushReferrersFixture(t *testing.T, reg *testregistry.Registry) referrersFixture {
	t.Helper()
	img := testregistry.Image{Layers: []testregistry.Layer{
		testregistry.TarLayer(testregistry.Gzip, testregistry.BytesFile("hello", []byte("hello\n"))),
	}}
	p, err := reg.PushImage("app", "v1", img)
	if err != nil {
		t.Fatal(err)
	}
	soci, err := reg.PushArtifact("app", p.Manifest, oci.SOCIIndexV1,
		map[string]string{"com.amazon.soci.build-tool-identifier": "imgfs test"}, []byte("a ztoc, as far as this test cares"))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := reg.PushArtifact("app", p.Manifest, signatureType, nil, []byte("a signature"))
	if err != nil {
		t.Fatal(err)
	}
	remote, err := NewRemote(Reference{Registry: reg.Host(), Repository: "app", Tag: "v1"},
		RemoteOptions{TransportOptions: TransportOptions{PlainHTTP: true}, Username: "user", Password: "pass"})
	if err != nil {
		t.Fatal(err)
	}
	return referrersFixture{image: p.Manifest, soci: soci, sig: sig, remote: remote}
}

// checkReferrers lists f.image's referrers and wants exactly want, in any
// order, with their artifact types and annotations.
func (f referrersFixture) checkReferrers(t *testing.T, artifactType string, want ...ocispec.Descriptor) {
	t.Helper()
	got, err := f.remote.Referrers(callContext(t), f.image, artifactType)
	if err != nil {
		t.Fatalf("Referrers(%q) = %v", artifactType, err)
	}
	if got == nil {
		t.Errorf("Referrers(%q) = nil, want a list, empty or not", artifactType)
	}
	if len(got) != len(want) {
		t.Fatalf("Referrers(%q) = %d referrers %v, want %d", artifactType, len(got), got, len(want))
	}
	for _, w := range want {
		i := slices.IndexFunc(got, func(d ocispec.Descriptor) bool { return d.Digest == w.Digest })
		if i < 0 {
			t.Fatalf("Referrers(%q) lacks %s (%s)", artifactType, w.Digest, w.ArtifactType)
		}
		g := got[i]
		if g.MediaType != w.MediaType || g.Size != w.Size || g.ArtifactType != w.ArtifactType || !mapsEqual(g.Annotations, w.Annotations) {
			t.Errorf("Referrers(%q) lists %+v, want %+v", artifactType, g, w)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestReferrersTagFallback lists referrers on distribution 2.8, which has
// no referrers API, through the <alg>-<ref> tag a client pushes there.
func TestReferrersTagFallback(t *testing.T) {
	reg := testregistry.Start(t)
	f := pushReferrersFixture(t, reg)
	// Without the tag there are none: 2.8 stores the subject field and
	// indexes nothing by it, and answers the referrers API with 404.
	f.checkReferrers(t, oci.SOCIIndexV1)
	if _, err := reg.PushReferrersTag("app", f.image.Digest, f.soci, f.sig); err != nil {
		t.Fatal(err)
	}
	f.checkReferrers(t, oci.SOCIIndexV1, f.soci)
	f.checkReferrers(t, "", f.soci, f.sig)
	f.checkReferrers(t, "application/vnd.example.none+json")

	// The tag names its subject: another manifest's referrers are its own.
	f.image = f.soci
	f.checkReferrers(t, "")
}

// TestReferrersTagFallbackThroughMirror lists referrers through a real
// pull-through mirror (distribution 2.8 in proxy mode) in front of 2.8:
// both answer the API with 404, so the mirror is passed over for it, and
// the fallback tag is then read through the mirror.
func TestReferrersTagFallbackThroughMirror(t *testing.T) {
	reg := testregistry.Start(t)
	f := pushReferrersFixture(t, reg)
	if _, err := reg.PushReferrersTag("app", f.image.Digest, f.soci, f.sig); err != nil {
		t.Fatal(err)
	}
	mirror := testregistry.Mirror(t, reg.Host())
	host := func(h string, m bool) hosts.Host {
		return hosts.Host{Scheme: "http", Host: h, Path: "/v2", Capabilities: hosts.Pull | hosts.Resolve, Mirror: m}
	}
	remote, err := NewRemote(Reference{Registry: reg.Host(), Repository: "app", Tag: "v1"},
		RemoteOptions{Username: "user", Password: "pass", Hosts: []hosts.Host{host(mirror.Host(), true), host(reg.Host(), false)}})
	if err != nil {
		t.Fatal(err)
	}
	f.remote = remote
	f.checkReferrers(t, oci.SOCIIndexV1, f.soci)
	tag := "/v2/app/manifests/" + testregistry.ReferrersTag(f.image.Digest)
	if log := mirror.Log(); !strings.Contains(log, tag) {
		t.Errorf("the mirror was not asked for %s; its log:\n%s", tag, log)
	}
}
