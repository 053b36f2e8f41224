package testregistry

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/containerd/stargz-snapshotter/estargz/zstdchunked"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// BlobFormat is how LayerBlob stores a prepared tar: the plain OCI
// compressions, or the TOC formats lazy pullers read by range.
type BlobFormat int

// Blob formats.
const (
	BlobTar BlobFormat = iota
	BlobGzip
	BlobZstd
	// BlobEStargz is gzip with a TOC, built by the estargz library; its
	// descriptor carries the toc.digest annotation.
	BlobEStargz
	// BlobZstdChunked is zstd:chunked, built by the estargz library; its
	// descriptor carries the zstd-chunked manifest checksum annotation.
	BlobZstdChunked
)

// String names the format for test names.
func (f BlobFormat) String() string {
	return [...]string{"tar", "gzip", "zstd", "estargz", "zstd-chunked"}[f]
}

// PreparedLayer is a layer blob built from a tar the test wrote itself, so
// that it can hold what File cannot: owners, xattrs, devices, whiteouts,
// hostile names.
type PreparedLayer struct {
	Data        []byte
	MediaType   string
	Annotations map[string]string
	DiffID      digest.Digest
}

// Descriptor is the layer's manifest entry.
func (l PreparedLayer) Descriptor() ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: l.MediaType, Digest: digest.FromBytes(l.Data), Size: int64(len(l.Data)), Annotations: l.Annotations}
}

// EStargzChunkSize is the chunk size of the TOC formats built here.
const EStargzChunkSize = 256 << 10

// zstdChunkedCodec gives estargz.WithCompression both halves it needs.
type zstdChunkedCodec struct {
	*zstdchunked.Compressor
	*zstdchunked.Decompressor
}

// LayerBlob stores the uncompressed tar raw in format f. Gzip uses
// BestSpeed and zstd the library's default level, single-threaded, so the
// digests are stable.
func LayerBlob(raw []byte, f BlobFormat) (PreparedLayer, error) {
	l := PreparedLayer{DiffID: digest.FromBytes(raw)}
	var buf bytes.Buffer
	switch f {
	case BlobTar:
		l.MediaType = ocispec.MediaTypeImageLayer
		buf.Write(raw)
	case BlobGzip:
		l.MediaType = ocispec.MediaTypeImageLayerGzip
		gz, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		gz.Write(raw)
		if err := gz.Close(); err != nil {
			return l, err
		}
	case BlobZstd:
		l.MediaType = ocispec.MediaTypeImageLayerZstd
		zw, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return l, err
		}
		zw.Write(raw)
		if err := zw.Close(); err != nil {
			return l, err
		}
	case BlobEStargz, BlobZstdChunked:
		opts := []estargz.Option{estargz.WithChunkSize(EStargzChunkSize)}
		l.MediaType = ocispec.MediaTypeImageLayerGzip
		ann := estargz.TOCJSONDigestAnnotation
		if f == BlobZstdChunked {
			opts = append(opts, estargz.WithCompression(&zstdChunkedCodec{&zstdchunked.Compressor{CompressionLevel: zstd.SpeedDefault}, new(zstdchunked.Decompressor)}))
			l.MediaType = ocispec.MediaTypeImageLayerZstd
			ann = zstdchunked.ManifestChecksumAnnotation
		}
		blob, err := estargz.Build(io.NewSectionReader(bytes.NewReader(raw), 0, int64(len(raw))), opts...)
		if err != nil {
			return l, fmt.Errorf("build %s layer: %w", f, err)
		}
		defer blob.Close()
		if _, err := io.Copy(&buf, blob); err != nil {
			return l, err
		}
		l.DiffID = blob.DiffID()
		l.Annotations = map[string]string{ann: blob.TOCDigest().String()}
	default:
		return l, fmt.Errorf("unknown blob format %d", f)
	}
	l.Data = buf.Bytes()
	return l, nil
}

// PushPrepared pushes an OCI image of prepared layers, base first, with a
// config listing their diff_ids.
func (r *Registry) PushPrepared(repo, tag string, layers []PreparedLayer) (Pushed, error) {
	img := Image{Layers: make([]Layer, len(layers))}
	p := Pushed{Repo: repo, Tag: tag, Platform: img.platform()}
	for i, l := range layers {
		d := l.Descriptor()
		if err := r.pushBytes(repo, l.Data, d); err != nil {
			return p, fmt.Errorf("push %s: layer %d: %w", repo, i, err)
		}
		p.Layers = append(p.Layers, d)
		p.DiffIDs = append(p.DiffIDs, l.DiffID)
	}
	err := r.pushConfigAndManifest(img, &p)
	return p, err
}
