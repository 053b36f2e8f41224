package testregistry

import (
	"encoding/json"
	"fmt"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PushArtifact pushes, by digest, an OCI 1.1 artifact manifest that refers
// to subject: artifactType set, the empty config, one layer per blob (raw
// application/octet-stream) and the given annotations. It returns the
// manifest's descriptor as a referrers list shows it, with artifactType
// and annotations. A registry with the referrers API indexes it under
// subject; an older one stores it and does nothing more, which is what
// PushReferrersTag is for.
func (r *Registry) PushArtifact(repo string, subject ocispec.Descriptor, artifactType string, annotations map[string]string, blobs ...[]byte) (ocispec.Descriptor, error) {
	empty := ocispec.DescriptorEmptyJSON
	if err := r.pushBytes(repo, empty.Data, empty); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("push artifact: empty config: %w", err)
	}
	empty.Data = nil // pushers may inline it; the registries here need not see it
	m := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: artifactType,
		Config:       empty,
		Layers:       []ocispec.Descriptor{},
		Subject:      &ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
		Annotations:  annotations,
	}
	for i, b := range blobs {
		d := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(b), Size: int64(len(b))}
		if err := r.pushBytes(repo, b, d); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("push artifact: blob %d: %w", i, err)
		}
		m.Layers = append(m.Layers, d)
	}
	body, err := json.Marshal(m)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc, err := r.PushManifest(repo, "", ocispec.MediaTypeImageManifest, body)
	if err != nil {
		return desc, fmt.Errorf("push artifact: %w", err)
	}
	desc.ArtifactType = artifactType
	desc.Annotations = annotations
	return desc, nil
}

// ReferrersTag is the tag under which the OCI distribution spec 1.1's
// fallback keeps subject's referrers on registries without the referrers
// API: <alg>-<ref>, ref being the hex digest cut to 64 characters.
func ReferrersTag(subject digest.Digest) string {
	ref := subject.Encoded()
	if len(ref) > 64 {
		ref = ref[:64]
	}
	return subject.Algorithm().String() + "-" + ref
}

// PushReferrersTag pushes, under ReferrersTag(subject), an OCI image index
// listing referrers as given, as a client that pushes referrers to a
// registry without the API does. It replaces what the tag held.
func (r *Registry) PushReferrersTag(repo string, subject digest.Digest, referrers ...ocispec.Descriptor) (ocispec.Descriptor, error) {
	body, err := json.Marshal(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: append([]ocispec.Descriptor{}, referrers...),
	})
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc, err := r.PushManifest(repo, ReferrersTag(subject), ocispec.MediaTypeImageIndex, body)
	if err != nil {
		return desc, fmt.Errorf("push referrers tag: %w", err)
	}
	return desc, nil
}
