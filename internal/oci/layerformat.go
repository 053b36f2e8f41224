package oci

import (
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// LayerFormat is how a layer's tar stream is stored in its blob, and so
// where the index of its files can come from.
type LayerFormat uint8

// Layer formats. The values are stored in layer indexes: never renumber.
const (
	FormatTar LayerFormat = iota + 1
	FormatGzip
	FormatZstd
	FormatEStargz
	FormatZstdChunked
)

var formatNames = [...]string{"invalid", "tar", "gzip", "zstd", "estargz", "zstd:chunked"}

func (f LayerFormat) String() string {
	if int(f) < len(formatNames) {
		return formatNames[f]
	}
	return "invalid"
}

// Annotations that mark a layer as carrying its own table of contents.
const (
	// AnnotationEStargzTOC holds an eStargz layer's TOC digest.
	AnnotationEStargzTOC = "containerd.io/snapshot/stargz/toc.digest"
	// AnnotationZstdChunkedManifest holds a zstd:chunked layer's TOC
	// (manifest) digest.
	AnnotationZstdChunkedManifest = "io.containers.zstd-chunked.manifest-checksum"
)

// LayerFormatOf tells a layer's format from its media type and
// annotations: a TOC format when the layer carries a TOC digest (eStargz,
// zstd:chunked), which it returns too, else its compression. A media type
// that is not a tar layer, or a TOC digest that does not parse, is an
// error naming the layer.
func LayerFormatOf(desc ocispec.Descriptor) (LayerFormat, digest.Digest, error) {
	mt := desc.MediaType
	gz := strings.HasSuffix(mt, "gzip")
	zst := strings.HasSuffix(mt, "zstd")
	toc := func(f LayerFormat, annotation string) (LayerFormat, digest.Digest, error) {
		d, err := digest.Parse(desc.Annotations[annotation])
		if err != nil {
			return 0, "", fmt.Errorf("layer %s: annotation %s: %w", desc.Digest, annotation, err)
		}
		return f, d, nil
	}
	if _, ok := desc.Annotations[AnnotationEStargzTOC]; ok && gz {
		return toc(FormatEStargz, AnnotationEStargzTOC)
	}
	if _, ok := desc.Annotations[AnnotationZstdChunkedManifest]; ok && zst {
		return toc(FormatZstdChunked, AnnotationZstdChunkedManifest)
	}
	switch {
	case gz:
		return FormatGzip, "", nil
	case zst:
		return FormatZstd, "", nil
	case strings.HasSuffix(mt, ".tar"):
		return FormatTar, "", nil
	}
	return 0, "", fmt.Errorf("layer %s: media type %q is not a tar layer", desc.Digest, mt)
}

// LayerExt returns the file extension for a layer media type, so that
// links to layers open with the right tool.
func LayerExt(mediaType string) string {
	switch {
	case strings.HasSuffix(mediaType, ".tar"):
		return ".tar"
	case strings.HasSuffix(mediaType, ".tar+gzip"), strings.HasSuffix(mediaType, ".tar.gzip"):
		return ".tar.gz"
	case strings.HasSuffix(mediaType, ".tar+zstd"), strings.HasSuffix(mediaType, ".tar.zstd"):
		return ".tar.zst"
	}
	return ".blob"
}

// IsTarLayer reports whether a layer media type is a tar whose files can
// be listed: plain, gzip or zstd, OCI or Docker, but not a
// non-distributable (foreign) layer, whose bytes the registry does not
// serve.
func IsTarLayer(mediaType string) bool {
	return LayerExt(mediaType) != ".blob" && !strings.Contains(mediaType, "nondistributable") && !strings.Contains(mediaType, "foreign")
}
