package layer

import (
	"context"
	"fmt"
	"io"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/containerd/stargz-snapshotter/estargz/zstdchunked"

	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/oci"
)

// TOCSize reads the footer of an eStargz or zstd:chunked layer blob of
// the given size, by range, and returns the size of its TOC: what a mount
// fetches to list the layer. It reads the footer only, not the TOC.
func TOCSize(ctx context.Context, src blobio.ReaderAt, size int64, format oci.LayerFormat) (int64, error) {
	var d estargz.Decompressor
	switch format {
	case oci.FormatEStargz:
		d = new(estargz.GzipDecompressor)
	case oci.FormatZstdChunked:
		d = new(zstdchunked.Decompressor)
	default:
		return 0, fmt.Errorf("layer: %s is not a TOC format", format)
	}
	fs := d.FooterSize()
	if size < fs {
		return 0, fmt.Errorf("%w: %s blob of %d bytes is shorter than its footer", ErrBroken, format, size)
	}
	footer := make([]byte, fs)
	if n, err := src.ReadAt(ctx, footer, size-fs); n < len(footer) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, fmt.Errorf("%s footer: %w", format, err)
	}
	_, tocOffset, tocSize, err := d.ParseFooter(footer)
	if err != nil {
		return 0, fmt.Errorf("%w: %s footer: %v", ErrBroken, format, err)
	}
	if tocSize <= 0 { // eStargz's gzip footer records only where the TOC starts
		tocSize = size - fs - tocOffset
	}
	if tocOffset < 0 || tocSize <= 0 || tocOffset+tocSize > size {
		return 0, fmt.Errorf("%w: %s footer puts the TOC at [%d,+%d) of a %d-byte blob", ErrBroken, format, tocOffset, tocSize, size)
	}
	return tocSize, nil
}
