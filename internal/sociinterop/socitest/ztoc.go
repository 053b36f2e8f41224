package socitest

import (
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/awslabs/soci-snapshotter/soci"
	"github.com/awslabs/soci-snapshotter/ztoc"
	"github.com/awslabs/soci-snapshotter/ztoc/compression"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DefaultSpanSize is SOCI's default span size (soci/soci_index.go): 4 MiB
// of uncompressed data.
const DefaultSpanSize = 4 << 20

// BuildTool is the build_tool_identifier the zTOCs and indexes built here
// record.
const BuildTool = "imgfs sociinterop"

// Options are the knobs of SOCI's IndexBuilder that matter to imgfs's
// tests.
type Options struct {
	// SpanSize is the uncompressed bytes between checkpoints;
	// 0 means DefaultSpanSize.
	SpanSize int64
	// MinLayerSize is the smallest layer blob that gets a zTOC, as
	// SOCI's --min-layer-size: 0 indexes every layer, where SOCI's
	// default (10 MiB) would skip all of the tests' small layers.
	MinLayerSize int64
}

func (o Options) spanSize() int64 {
	if o.SpanSize <= 0 {
		return DefaultSpanSize
	}
	return o.SpanSize
}

// Ztoc is one zTOC built by SOCI's own builder and serialized by SOCI's
// own ztoc.Marshal.
type Ztoc struct {
	// Bytes is the serialized zTOC, the blob an index lists.
	Bytes []byte
	// Desc is the zTOC's descriptor as SOCI's IndexBuilder lists it in an
	// index: application/octet-stream, annotated with the layer's digest
	// and media type and the span size.
	Desc ocispec.Descriptor
	// TOC is SOCI's in-memory zTOC, as BuildZtoc returned it.
	TOC *ztoc.Ztoc
	// Layer is the layer's descriptor.
	Layer ocispec.Descriptor
}

// compressionOf maps a layer media type to SOCI's compression name, as
// IndexBuilder.buildSociLayer does through containerd; ok is false for
// layers SOCI does not index (zstd, non-layers).
func compressionOf(mediaType string) (string, bool) {
	switch mediaType {
	case ocispec.MediaTypeImageLayerGzip, "application/vnd.docker.image.rootfs.diff.tar.gzip":
		return compression.Gzip, true
	case ocispec.MediaTypeImageLayer, "application/vnd.docker.image.rootfs.diff.tar":
		return compression.Uncompressed, true
	}
	return "", false
}

// BuildZtoc builds the zTOC of the layer blob with SOCI's ztoc.Builder and
// serializes it with ztoc.Marshal. layer is the blob's descriptor; its media
// type picks the compression. SOCI builds from a file, so the blob is
// written to a temporary one first.
func BuildZtoc(blob []byte, layer ocispec.Descriptor, opts Options) (*Ztoc, error) {
	f, err := os.CreateTemp("", "socitest-layer-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(blob)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return BuildZtocFile(f.Name(), layer, opts)
}

// BuildZtocFile is BuildZtoc for a layer blob in a file.
func BuildZtocFile(path string, layer ocispec.Descriptor, opts Options) (*Ztoc, error) {
	algo, ok := compressionOf(layer.MediaType)
	if !ok {
		return nil, fmt.Errorf("socitest: SOCI does not index layers of media type %s", layer.MediaType)
	}
	toc, err := ztoc.NewBuilder(BuildTool).BuildZtoc(path, opts.spanSize(), ztoc.WithCompression(algo))
	if err != nil {
		return nil, fmt.Errorf("soci ztoc build of %s: %w", layer.Digest, err)
	}
	r, desc, err := ztoc.Marshal(toc)
	if err != nil {
		return nil, fmt.Errorf("soci ztoc marshal of %s: %w", layer.Digest, err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	// What IndexBuilder.addSociLayerAnnotations writes.
	desc.MediaType = soci.SociLayerMediaType
	desc.Annotations = map[string]string{
		soci.IndexAnnotationImageLayerMediaType: layer.MediaType,
		soci.IndexAnnotationImageLayerDigest:    layer.Digest.String(),
		soci.IndexAnnotationSociSpanSize:        strconv.FormatInt(opts.spanSize(), 10),
	}
	return &Ztoc{Bytes: b, Desc: desc, TOC: toc, Layer: layer}, nil
}

// BuildZtocs builds the zTOC of each layer that SOCI's IndexBuilder would
// index: those of a tar or tar+gzip media type and at least
// opts.MinLayerSize bytes. blobs holds the layers' bytes, in the order of
// layers. It returns the zTOCs in layer order, skipping the others.
func BuildZtocs(layers []ocispec.Descriptor, blobs [][]byte, opts Options) ([]*Ztoc, error) {
	if len(layers) != len(blobs) {
		return nil, fmt.Errorf("socitest: %d layers, %d blobs", len(layers), len(blobs))
	}
	var out []*Ztoc
	for i, l := range layers {
		if _, ok := compressionOf(l.MediaType); !ok || l.Size < opts.MinLayerSize {
			continue
		}
		z, err := BuildZtoc(blobs[i], l, opts)
		if err != nil {
			return nil, err
		}
		out = append(out, z)
	}
	return out, nil
}

// Index is a SOCI index manifest made by SOCI's soci.NewIndex and
// serialized by soci.MarshalIndex.
type Index struct {
	// Manifest is the serialized index: an OCI image manifest whose
	// config is SOCI's 2-byte "{}" with the index's artifact type as its
	// media type, and whose layers are the zTOCs.
	Manifest []byte
	// Desc is the manifest's descriptor as SOCI's writeSociIndex makes
	// it: the OCI manifest media type and the artifact type.
	Desc ocispec.Descriptor
	// Index is SOCI's in-memory index.
	Index *soci.Index
	// Ztocs are the zTOCs the index lists, in order.
	Ztocs []*Ztoc
}

// ConfigBytes is the content of every SOCI index's config, "{}"; its
// digest is soci.Index.Config's.
var ConfigBytes = []byte("{}")

// NewIndex makes a SOCI index of version soci.V1, whose subject is the
// image manifest subject, or soci.V2, with no subject (subject must be
// nil). Its annotations are those SOCI's IndexBuilder writes.
func NewIndex(version soci.IndexVersion, subject *ocispec.Descriptor, ztocs []*Ztoc) (*Index, error) {
	blobs := make([]ocispec.Descriptor, len(ztocs))
	for i, z := range ztocs {
		blobs[i] = z.Desc
	}
	if len(blobs) == 0 {
		return nil, soci.ErrEmptyIndex
	}
	var refers *ocispec.Descriptor
	if subject != nil {
		// IndexBuilder.build keeps only these three fields of the subject.
		refers = &ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	}
	idx := soci.NewIndex(version, blobs, refers, map[string]string{
		soci.IndexAnnotationBuildToolIdentifier: BuildTool,
	})
	switch {
	case idx.ArtifactType == soci.SociIndexArtifactTypeV1 && refers == nil:
		return nil, fmt.Errorf("socitest: a v1 SOCI index needs a subject")
	case idx.ArtifactType == soci.SociIndexArtifactTypeV2 && refers != nil:
		return nil, fmt.Errorf("socitest: a v2 SOCI index has no subject")
	}
	b, err := soci.MarshalIndex(idx)
	if err != nil {
		return nil, err
	}
	var check soci.Index
	if err := soci.UnmarshalIndex(b, &check); err != nil {
		return nil, fmt.Errorf("socitest: SOCI refuses its own index: %w", err)
	}
	if idx.Config.Digest != digestOf(ConfigBytes) || idx.Config.Size != int64(len(ConfigBytes)) {
		return nil, fmt.Errorf("socitest: SOCI's index config is %+v, not the 2-byte {}", idx.Config)
	}
	return &Index{
		Manifest: b,
		Desc: ocispec.Descriptor{
			MediaType:    ocispec.MediaTypeImageManifest,
			ArtifactType: idx.ArtifactType,
			Digest:       digestOf(b),
			Size:         int64(len(b)),
		},
		Index: idx,
		Ztocs: ztocs,
	}, nil
}

// ZtocFor returns the zTOC of the layer with the given digest, or nil.
func (x *Index) ZtocFor(layer ocispec.Descriptor) *Ztoc {
	for _, z := range x.Ztocs {
		if z.Layer.Digest == layer.Digest {
			return z
		}
	}
	return nil
}
