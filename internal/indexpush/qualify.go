package indexpush

import (
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/oci"
)

// skip says why a layer gets no zTOC: kind, in a few words that a summary
// counts, and why, the whole reason.
type skip struct{ kind, why string }

// skipReason says why layer gets no zTOC, or returns false when it
// qualifies: a gzip tar layer, without a TOC of its own, of at least
// minSize bytes. SOCI's zTOC holds gzip checkpoints, so other compressions
// have nothing to index, and the TOC formats and plain tars are read by
// range without one.
func skipReason(layer ocispec.Descriptor, minSize int64) (skip, bool) {
	if !oci.IsTarLayer(layer.MediaType) {
		return skip{"not a tar layer", fmt.Sprintf("not a tar layer the registry serves (media type %s)", oci.Quote(layer.MediaType))}, true
	}
	format, _, err := oci.LayerFormatOf(layer)
	if err != nil {
		return skip{"unreadable annotations", err.Error()}, true
	}
	switch format {
	case oci.FormatGzip:
	case oci.FormatEStargz, oci.FormatZstdChunked:
		return skip{format.String(), fmt.Sprintf("%s: has its own TOC, read by range", format)}, true
	case oci.FormatTar:
		return skip{"uncompressed", "uncompressed tar: read by its headers, needs no zTOC"}, true
	default:
		return skip{format.String(), fmt.Sprintf("%s: a zTOC indexes gzip only", format)}, true
	}
	if layer.Size < minSize {
		return skip{"under the minimum layer size " + sizeText(minSize),
			fmt.Sprintf("%s, under the minimum layer size %s: fetched whole", sizeText(layer.Size), sizeText(minSize))}, true
	}
	return skip{}, false
}

// sizeText writes n bytes in binary units, as SOCI's flags are given.
func sizeText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 3 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGT"[i])
}
