package testregistry

import (
	"encoding/json"
	"fmt"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// IndexEntry is one manifest listed in an index: a pushed manifest's
// descriptor, the platform it is listed under, and the entry's annotations.
type IndexEntry struct {
	Manifest    ocispec.Descriptor
	Platform    ocispec.Platform
	Annotations map[string]string
}

// descriptor returns the entry as it appears in the index's manifests list.
func (e IndexEntry) descriptor() ocispec.Descriptor {
	d := e.Manifest
	p := e.Platform
	d.Platform = &p
	d.Annotations = e.Annotations
	return d
}

// PushedIndex describes an index pushed by PushIndex, with its exact bytes.
type PushedIndex struct {
	Repo       string
	Tag        string
	Index      ocispec.Descriptor
	IndexBytes []byte
	Entries    []IndexEntry
}

// PushIndex pushes an index listing entries, in order, to repo under tag (by
// digest only when tag is ""). With docker set it is a Docker manifest list
// rather than an OCI image index. The entries' manifests must already be in
// repo: the registry checks.
func (r *Registry) PushIndex(repo, tag string, docker bool, entries ...IndexEntry) (PushedIndex, error) {
	mediaType := ocispec.MediaTypeImageIndex
	if docker {
		mediaType = MediaTypeDockerManifestList
	}
	manifests := make([]ocispec.Descriptor, len(entries))
	for i, e := range entries {
		manifests[i] = e.descriptor()
	}
	body, err := json.Marshal(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: mediaType,
		Manifests: manifests,
	})
	if err != nil {
		return PushedIndex{}, err
	}
	desc, err := r.PushManifest(repo, tag, mediaType, body)
	if err != nil {
		return PushedIndex{}, fmt.Errorf("push index: %w", err)
	}
	return PushedIndex{Repo: repo, Tag: tag, Index: desc, IndexBytes: body, Entries: entries}, nil
}

// Annotations and media type of BuildKit's attestation manifests. Clients
// recognise an attestation by the reference type annotation on its index
// entry (and its unknown/unknown platform) and must not pick it as an image.
const (
	// AnnotationReferenceType on an index entry says what kind of
	// reference the entry is; ReferenceTypeAttestation for attestations.
	AnnotationReferenceType = "vnd.docker.reference.type"
	// AnnotationReferenceDigest on an attestation's index entry is the
	// digest of the image manifest it attests.
	AnnotationReferenceDigest = "vnd.docker.reference.digest"
	// ReferenceTypeAttestation is the AnnotationReferenceType value of an
	// attestation manifest.
	ReferenceTypeAttestation = "attestation-manifest"
	// MediaTypeInToto is the media type of an in-toto statement layer.
	MediaTypeInToto = "application/vnd.in-toto+json"
	// AnnotationInTotoPredicate on an in-toto layer names its predicate
	// type (SLSA provenance, SPDX, ...).
	AnnotationInTotoPredicate = "in-toto.io/predicate-type"
)

// AttestationImage returns the attestation manifest BuildKit attaches to an
// image: OCI media types, platform unknown/unknown, and one raw in-toto
// statement layer (SLSA provenance) about subject. It is deterministic in
// subject.
func AttestationImage(subject digest.Digest) Image {
	statement := map[string]any{
		"_type":         "https://in-toto.io/Statement/v0.1",
		"predicateType": "https://slsa.dev/provenance/v0.2",
		"subject": []any{map[string]any{
			"name":   "_",
			"digest": map[string]string{subject.Algorithm().String(): subject.Encoded()},
		}},
		"predicate": map[string]any{
			"builder":   map[string]string{"id": "imgfs/testregistry"},
			"buildType": "https://mobyproject.org/buildkit@v1",
		},
	}
	// Marshalling maps sorts their keys, so the statement is stable.
	body, _ := json.Marshal(statement)
	l := RawLayer(MediaTypeInToto, body)
	l.Annotations = map[string]string{AnnotationInTotoPredicate: "https://slsa.dev/provenance/v0.2"}
	return Image{
		Layers:   []Layer{l},
		Platform: ocispec.Platform{OS: "unknown", Architecture: "unknown"},
	}
}

// PushAttestation pushes AttestationImage(subject) to repo by digest and
// returns its index entry as buildx writes it: platform unknown/unknown and
// the reference type and digest annotations pointing at subject.
func (r *Registry) PushAttestation(repo string, subject digest.Digest) (IndexEntry, error) {
	p, err := r.PushImage(repo, "", AttestationImage(subject))
	if err != nil {
		return IndexEntry{}, fmt.Errorf("push attestation for %s: %w", subject, err)
	}
	e := p.Entry()
	e.Annotations = map[string]string{
		AnnotationReferenceType:   ReferenceTypeAttestation,
		AnnotationReferenceDigest: subject.String(),
	}
	return e, nil
}
