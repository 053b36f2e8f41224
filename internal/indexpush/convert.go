package indexpush

import (
	"encoding/json"
	"fmt"
	"maps"

	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/oci"
	"github.com/imgfs/imgfs/internal/soci"
)

// converted is one image manifest of a SOCI-enabled image.
type converted struct {
	source   ocispec.Descriptor // the manifest as the source lists it
	manifest ocispec.Descriptor // its rewrite, listed as SOCI lists it
	index    ocispec.Descriptor // its v2 SOCI index, listed as SOCI lists it
}

// enableManifest rewrites an image manifest as SOCI's conversion does
// (annotateImages in soci/soci_convert.go): OCI media types for the
// manifest and its config's descriptor, and the digest of its v2 index
// in its annotations. The layers, config bytes and other annotations are
// kept; fields an OCI manifest does not define are dropped.
func enableManifest(m ocispec.Manifest, index digest.Digest) ([]byte, map[string]string, error) {
	m.SchemaVersion = 2
	m.MediaType = ocispec.MediaTypeImageManifest
	m.Config.MediaType = ocispec.MediaTypeImageConfig
	m.Annotations = maps.Clone(m.Annotations)
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	m.Annotations[soci.AnnotationIndexDigest] = index.String()
	data, err := json.Marshal(m)
	return data, m.Annotations, err
}

// listing returns how a SOCI-enabled image index lists c's manifest and
// its index: the manifest with its platform and, as SOCI copies them, its
// annotations; the index as an artifact of type ArtifactTypeV2 for the
// same platform, annotated with the manifest's digest.
func listing(manifest ocispec.Descriptor, annotations map[string]string, index ocispec.Descriptor, p ocispec.Platform) (m, x ocispec.Descriptor) {
	m = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: manifest.Digest, Size: manifest.Size, Platform: &p, Annotations: annotations}
	x = ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageManifest, ArtifactType: soci.ArtifactTypeV2,
		Digest: index.Digest, Size: index.Size, Platform: &p,
		Annotations: map[string]string{soci.AnnotationImageManifestDigest: manifest.Digest.String()},
	}
	return m, x
}

// enableIndex returns the image index of the SOCI-enabled image made
// from root: root's own entries (or root itself, when it is a manifest)
// in their order, each converted one replaced by its rewrite, and then the
// SOCI indexes. As SOCI's addSociIndexes does, an index already listed for
// the same platform is replaced rather than joined; entries not converted
// are kept as they are.
func enableIndex(root ocispec.Descriptor, rootData []byte, conv []converted) ([]byte, error) {
	out := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	if oci.IsIndex(root.MediaType) {
		var src ocispec.Index
		if err := json.Unmarshal(rootData, &src); err != nil {
			return nil, fmt.Errorf("image index %s: %w", root.Digest, err)
		}
		out.Manifests, out.Annotations = src.Manifests, src.Annotations
	} else {
		out.Manifests = []ocispec.Descriptor{root}
	}
	for _, c := range conv {
		replaced := false
		for i, m := range out.Manifests {
			if m.Digest == c.source.Digest {
				out.Manifests[i] = c.manifest
				replaced = true
			}
		}
		if !replaced {
			return nil, fmt.Errorf("image index %s does not list manifest %s", root.Digest, c.source.Digest)
		}
	}
	// Only the source's own SOCI indexes are replaced, each once.
	source, taken := len(out.Manifests), map[int]bool{}
	for _, c := range conv {
		match := platforms.OnlyStrict(platforms.Normalize(*c.index.Platform))
		at := -1
		for i, m := range out.Manifests[:source] {
			isIndex := m.ArtifactType == soci.ArtifactTypeV2 || m.Annotations[soci.AnnotationImageManifestDigest] != ""
			if isIndex && !taken[i] && m.Platform != nil && match.Match(*m.Platform) {
				at = i
				break
			}
		}
		if at < 0 {
			out.Manifests = append(out.Manifests, c.index)
			continue
		}
		out.Manifests[at], taken[at] = c.index, true
	}
	return json.Marshal(out)
}
