package sociinterop

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/awslabs/soci-snapshotter/soci"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/fetch"
	"github.com/imgfs/imgfs/internal/oci"
	"github.com/imgfs/imgfs/internal/sociinterop/socitest"
	"github.com/imgfs/imgfs/internal/testregistry"
)

// signatureType is the artifact type of a second referrer, which the
// SOCI filter must leave out.
const signatureType = "application/vnd.dev.cosign.artifact.sig.v1+json"

// registryCase is one of the two registries a v1 SOCI index is pushed to.
type registryCase struct {
	name string
	host string
	// fallback: the registry has no referrers API, so the pusher keeps
	// the referrers list under the <alg>-<hex> tag.
	fallback bool
}

// registries starts both registries: go-containerregistry's with the
// referrers API and the Debian docker-registry 2.8 without it.
func registries(t *testing.T) []registryCase {
	t.Helper()
	return []registryCase{
		{"referrers API (go-containerregistry)", socitest.StartReferrersRegistry(t).Host(), false},
		{"tag fallback (docker-registry 2.8)", testregistry.Start(t).Host(), true},
	}
}

// fixtureLayer is a gzip layer of FixtureTar(seed), as testregistry's
// LayerBlob compresses it (BestSpeed).
func fixtureLayer(t *testing.T, seed uint64) testregistry.PreparedLayer {
	t.Helper()
	l, err := testregistry.LayerBlob(socitest.FixtureTar(seed), testregistry.BlobGzip)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestSOCIReferrersListed pushes a v1 SOCI index made by SOCI's code, and a
// signature, as referrers of an image, to a registry with the referrers API
// and to docker-registry 2.8 through the tag fallback. It checks what each
// registry reports for the SOCI index (its artifactType comes from the
// config's media type: SOCI's MarshalIndex leaves the manifest's
// artifactType field out), and that fetch.Remote.Referrers lists it, and
// only it, under SOCI's v1 artifact type, on both.
func TestSOCIReferrersListed(t *testing.T) {
	layer := fixtureLayer(t, 2)
	for _, rc := range registries(t) {
		t.Run(rc.name, func(t *testing.T) {
			c := socitest.NewClient(rc.host)
			img, err := c.PushImage("app", "v1", layer)
			if err != nil {
				t.Fatal(err)
			}
			before, err := c.ReferrersAPI("app", img.Manifest.Digest)
			switch {
			case rc.fallback && !errors.Is(err, socitest.ErrNotFound):
				t.Fatalf("docker-registry 2.8 answers GET /v2/app/referrers/<digest> with %+v, %v; want 404, no API", before, err)
			case !rc.fallback && (err != nil || before.MediaType != ocispec.MediaTypeImageIndex || len(before.Manifests) != 0):
				t.Fatalf("the referrers API answers %+v, %v; want an empty OCI index", before, err)
			}

			idx, err := c.PushV1(img, socitest.Options{SpanSize: 64 << 10}, rc.fallback)
			if err != nil {
				t.Fatal(err)
			}
			var m ocispec.Manifest
			if err := json.Unmarshal(idx.Manifest, &m); err != nil {
				t.Fatal(err)
			}
			if m.ArtifactType != "" || m.Config.MediaType != soci.SociIndexArtifactTypeV1 || m.Subject == nil || m.Subject.Digest != img.Manifest.Digest {
				t.Errorf("SOCI's v1 index: artifactType %q, config %s, subject %v; want none, SOCI's v1 type, the image", m.ArtifactType, m.Config.MediaType, m.Subject)
			}
			sig := pushSignature(t, c, img, rc.fallback)

			// What the registry itself lists.
			var listed []ocispec.Descriptor
			if rc.fallback {
				b, _, err := c.Manifest("app", testregistry.ReferrersTag(img.Manifest.Digest))
				var index ocispec.Index
				if err == nil {
					err = json.Unmarshal(b, &index)
				}
				if err != nil {
					t.Fatalf("the fallback tag: %v", err)
				}
				listed = index.Manifests
			} else {
				index, err := c.ReferrersAPI("app", img.Manifest.Digest)
				if err != nil {
					t.Fatalf("GET /v2/app/referrers/%s: %v", img.Manifest.Digest, err)
				}
				listed = index.Manifests
			}
			for _, d := range listed {
				t.Logf("the registry lists %s %s, artifactType %q", d.MediaType, d.Digest, d.ArtifactType)
			}
			want := idx.ReferrerDescriptor()
			i := slices.IndexFunc(listed, func(d ocispec.Descriptor) bool { return d.Digest == idx.Desc.Digest })
			if i < 0 || len(listed) != 2 {
				t.Fatalf("the registry lists %+v; want the SOCI index %s and the signature", listed, idx.Desc.Digest)
			}
			if g := listed[i]; g.ArtifactType != soci.SociIndexArtifactTypeV1 || g.MediaType != ocispec.MediaTypeImageManifest || g.Size != want.Size || !maps.Equal(g.Annotations, want.Annotations) {
				t.Errorf("the registry lists the SOCI index as %+v, want %+v", g, want)
			}

			remote, err := fetch.NewRemote(fetch.Reference{Registry: rc.host, Repository: "app", Tag: "v1"},
				fetch.RemoteOptions{TransportOptions: fetch.TransportOptions{PlainHTTP: true}, Username: "user", Password: "pass"})
			if err != nil {
				t.Fatal(err)
			}
			if soci.SociIndexArtifactTypeV1 != oci.SOCIIndexV1 {
				t.Errorf("imgfs's oci.SOCIIndexV1 is %q, SOCI's is %q", oci.SOCIIndexV1, soci.SociIndexArtifactTypeV1)
			}
			got, err := remote.Referrers(testContext(t), img.Manifest, oci.SOCIIndexV1)
			if err != nil {
				t.Fatalf("fetch.Referrers: %v", err)
			}
			if len(got) != 1 || got[0].Digest != idx.Desc.Digest || got[0].ArtifactType != oci.SOCIIndexV1 ||
				got[0].MediaType != ocispec.MediaTypeImageManifest || got[0].Size != idx.Desc.Size ||
				got[0].Annotations[soci.IndexAnnotationBuildToolIdentifier] != socitest.BuildTool {
				t.Errorf("fetch.Referrers(%s) = %+v; want only the SOCI index %s", oci.SOCIIndexV1, got, idx.Desc.Digest)
			}
			all, err := remote.Referrers(testContext(t), img.Manifest, "")
			if err != nil || len(all) != 2 || !slices.ContainsFunc(all, func(d ocispec.Descriptor) bool { return d.Digest == sig.Digest }) {
				t.Errorf("fetch.Referrers(any) = %+v, %v; want the SOCI index and the signature", all, err)
			}
		})
	}
}

// pushSignature pushes a second referrer of img, with the artifactType
// field set as cosign and oras write it, and lists it under the fallback
// tag when the registry has no API.
func pushSignature(t *testing.T, c *socitest.Client, img socitest.Image, fallback bool) ocispec.Descriptor {
	t.Helper()
	empty := ocispec.DescriptorEmptyJSON
	if _, err := c.PushBlob(img.Repo, empty.Data); err != nil {
		t.Fatal(err)
	}
	sigBlob, err := c.PushBlob(img.Repo, []byte("a signature"))
	if err != nil {
		t.Fatal(err)
	}
	empty.Data = nil
	body, err := json.Marshal(ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: signatureType,
		Config:       empty,
		Layers:       []ocispec.Descriptor{sigBlob},
		Subject:      &ocispec.Descriptor{MediaType: img.Manifest.MediaType, Digest: img.Manifest.Digest, Size: img.Manifest.Size},
	})
	if err != nil {
		t.Fatal(err)
	}
	desc, err := c.PushManifest(img.Repo, "", ocispec.MediaTypeImageManifest, body)
	if err != nil {
		t.Fatal(err)
	}
	desc.ArtifactType = signatureType
	if fallback {
		if _, err := c.AddToReferrersTag(img.Repo, img.Manifest.Digest, desc); err != nil {
			t.Fatal(err)
		}
	}
	return desc
}
