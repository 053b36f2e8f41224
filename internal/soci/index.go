package soci

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/oci"
)

// Version is a SOCI index manifest's version.
type Version int

// The versions, as SOCI numbers them.
const (
	V1 Version = 1
	V2 Version = 2
)

// ArtifactType returns the artifact type of an index of version v.
func (v Version) ArtifactType() string {
	if v == V2 {
		return ArtifactTypeV2
	}
	return ArtifactTypeV1
}

func (v Version) String() string { return "v" + strconv.Itoa(int(v)) }

// Index is a parsed SOCI index manifest.
type Index struct {
	Version Version
	// Subject is the manifest a v1 index names as the image it indexes;
	// nil in a v2 index, which the image names instead.
	Subject *ocispec.Descriptor
	// Ztocs are the index's zTOCs in its order, at most one per layer.
	Ztocs []Ztoc
	// BuildTool is the AnnotationBuildTool, as recorded.
	BuildTool string
}

// Ztoc is one zTOC an index lists: the blob, and the layer it indexes.
type Ztoc struct {
	Desc           ocispec.Descriptor // the zTOC blob: media type ZtocMediaType
	Layer          digest.Digest      // AnnotationLayerDigest
	LayerMediaType string             // AnnotationLayerMediaType, "" when absent
}

// For returns the zTOC of the layer with digest layer.
func (x *Index) For(layer digest.Digest) (Ztoc, bool) {
	for _, z := range x.Ztocs {
		if z.Layer == layer {
			return z, true
		}
	}
	return Ztoc{}, false
}

// Limits on what Parse accepts.
const (
	// MaxZtocSize bounds one zTOC's size. A zTOC is read whole into
	// memory; SOCI's run to a few percent of their layer (2.5 MB for a
	// 63 MB Debian layer), so this leaves room for layers of several
	// GB.
	MaxZtocSize = 256 << 20
	// MaxZtocs bounds the zTOCs one index lists: one per layer, and an
	// image manifest with more layers than this is not one anyone runs.
	MaxZtocs = 1024
)

// Parse parses a SOCI index manifest, of at most oci.MaxMetadataSize
// bytes, as hostile input: it must be an OCI image manifest whose config
// has a SOCI artifact type; every zTOC descriptor must name a valid digest,
// a size from 1 to MaxZtocSize and a valid layer digest, and no layer may
// have two. Blobs of other media types (SOCI's prefetch lists) are
// skipped.
func Parse(data []byte) (*Index, error) {
	if len(data) > oci.MaxMetadataSize {
		return nil, fmt.Errorf("SOCI index: %d bytes, over the %d-byte limit for a manifest", len(data), oci.MaxMetadataSize)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("SOCI index: %w", err)
	}
	if m.SchemaVersion != 2 || m.MediaType != ocispec.MediaTypeImageManifest {
		return nil, fmt.Errorf("SOCI index: not an OCI image manifest (schemaVersion %d, mediaType %s)", m.SchemaVersion, oci.Quote(m.MediaType))
	}
	x := &Index{BuildTool: m.Annotations[AnnotationBuildTool]}
	switch m.Config.MediaType {
	case ArtifactTypeV1:
		x.Version = V1
	case ArtifactTypeV2:
		x.Version = V2
	default:
		return nil, fmt.Errorf("SOCI index: config media type %s is not a SOCI index's", oci.Quote(m.Config.MediaType))
	}
	if m.ArtifactType != "" && m.ArtifactType != m.Config.MediaType {
		return nil, fmt.Errorf("SOCI index: artifactType %s disagrees with its config's %s", oci.Quote(m.ArtifactType), m.Config.MediaType)
	}
	if m.Subject != nil {
		if err := oci.CheckDescriptor(*m.Subject); err != nil {
			return nil, fmt.Errorf("SOCI index: subject: %w", err)
		}
		x.Subject = m.Subject
	}
	if len(m.Layers) > MaxZtocs {
		return nil, fmt.Errorf("SOCI index: %d blobs, over the limit of %d", len(m.Layers), MaxZtocs)
	}
	seen := map[digest.Digest]bool{}
	for i, d := range m.Layers {
		if d.MediaType != ZtocMediaType {
			continue
		}
		z, err := parseZtoc(d)
		if err != nil {
			return nil, fmt.Errorf("SOCI index: zTOC %d: %w", i, err)
		}
		if seen[z.Layer] {
			return nil, fmt.Errorf("SOCI index: two zTOCs for layer %s", z.Layer)
		}
		seen[z.Layer] = true
		x.Ztocs = append(x.Ztocs, z)
	}
	return x, nil
}

func parseZtoc(d ocispec.Descriptor) (Ztoc, error) {
	if err := oci.CheckDigest(d.Digest); err != nil {
		return Ztoc{}, err
	}
	if d.Size < 1 || d.Size > MaxZtocSize {
		return Ztoc{}, fmt.Errorf("%s: size %d, want 1 to %d", d.Digest, d.Size, MaxZtocSize)
	}
	layer := digest.Digest(d.Annotations[AnnotationLayerDigest])
	if err := oci.CheckDigest(layer); err != nil {
		return Ztoc{}, fmt.Errorf("%s: %s: %w", d.Digest, AnnotationLayerDigest, err)
	}
	mt := d.Annotations[AnnotationLayerMediaType]
	if mt != "" {
		if err := oci.Check(mt); err != nil {
			return Ztoc{}, fmt.Errorf("%s: %s: %w", d.Digest, AnnotationLayerMediaType, err)
		}
	}
	return Ztoc{Desc: ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}, Layer: layer, LayerMediaType: mt}, nil
}

// Built is one zTOC to list in a new index.
type Built struct {
	Layer    ocispec.Descriptor // the image layer
	Ztoc     ocispec.Descriptor // the zTOC blob's digest and size
	SpanSize int64
}

// Marshal writes an index manifest of version v listing ztocs, with the
// media types and annotations SOCI's own indexes carry, so that SOCI's
// snapshotter reads it as one of its own. A v1 index names subject, the
// image manifest; a v2 index names none (the image names it). It also
// returns the config blob every index points at, which must be pushed
// with it.
func Marshal(v Version, ztocs []Built, subject *ocispec.Descriptor, buildTool string) (manifest, config []byte, err error) {
	if len(ztocs) == 0 {
		return nil, nil, fmt.Errorf("SOCI index: no zTOC to list")
	}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{
			MediaType: v.ArtifactType(),
			Digest:    digest.FromBytes(emptyConfig),
			Size:      int64(len(emptyConfig)),
		},
		Annotations: map[string]string{AnnotationBuildTool: buildTool},
	}
	if v == V1 {
		if subject == nil {
			return nil, nil, fmt.Errorf("SOCI index v1: no subject")
		}
		m.Subject = &ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	}
	for _, z := range ztocs {
		m.Layers = append(m.Layers, ocispec.Descriptor{
			MediaType: ZtocMediaType,
			Digest:    z.Ztoc.Digest,
			Size:      z.Ztoc.Size,
			Annotations: map[string]string{
				AnnotationLayerMediaType: z.Layer.MediaType,
				AnnotationLayerDigest:    z.Layer.Digest.String(),
				AnnotationSpanSize:       strconv.FormatInt(z.SpanSize, 10),
			},
		})
	}
	manifest, err = json.Marshal(m)
	if err != nil {
		return nil, nil, err
	}
	return manifest, emptyConfig, nil
}
