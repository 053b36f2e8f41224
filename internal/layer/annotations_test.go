package layer

import (
	"testing"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/containerd/stargz-snapshotter/estargz/zstdchunked"

	"github.com/imgfs/imgfs/internal/oci"
)

// TestTOCAnnotations holds internal/oci's annotation names, which it
// spells out to stay free of the estargz module, to the library's.
func TestTOCAnnotations(t *testing.T) {
	if oci.AnnotationEStargzTOC != estargz.TOCJSONDigestAnnotation {
		t.Errorf("oci.AnnotationEStargzTOC = %q, estargz says %q", oci.AnnotationEStargzTOC, estargz.TOCJSONDigestAnnotation)
	}
	if oci.AnnotationZstdChunkedManifest != zstdchunked.ManifestChecksumAnnotation {
		t.Errorf("oci.AnnotationZstdChunkedManifest = %q, zstdchunked says %q", oci.AnnotationZstdChunkedManifest, zstdchunked.ManifestChecksumAnnotation)
	}
}
