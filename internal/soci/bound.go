package soci

import (
	"encoding/json"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/oci"
)

// BoundIndex returns the v2 SOCI index that a SOCI-enabled image manifest
// names in its own annotations (AnnotationIndexDigest), and false when it
// names none. The manifest's bytes are verified by the caller against a
// digest from the user's reference, so the index digest is as trusted as
// the image. Its size is not in the manifest: the image index lists it
// (see Listed).
func BoundIndex(manifest []byte) (digest.Digest, bool, error) {
	var m struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		return "", false, fmt.Errorf("image manifest: %w", err)
	}
	s, ok := m.Annotations[AnnotationIndexDigest]
	if !ok {
		return "", false, nil
	}
	d := digest.Digest(s)
	if err := oci.CheckDigest(d); err != nil {
		return "", false, fmt.Errorf("image manifest: %s: %w", AnnotationIndexDigest, err)
	}
	return d, true, nil
}

// Listed returns the descriptor of the v2 index d among the manifests an
// image index lists, as SOCI's conversion puts it there: artifactType
// ArtifactTypeV2 and an OCI image manifest, at most oci.MaxMetadataSize
// bytes.
func Listed(manifests []ocispec.Descriptor, d digest.Digest) (ocispec.Descriptor, bool) {
	for _, m := range manifests {
		if m.Digest != d || m.MediaType != ocispec.MediaTypeImageManifest {
			continue
		}
		if oci.CheckDescriptor(m) != nil {
			continue
		}
		return ocispec.Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size, ArtifactType: m.ArtifactType}, true
	}
	return ocispec.Descriptor{}, false
}
