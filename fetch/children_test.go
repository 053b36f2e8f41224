package fetch

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/oci"
)

func TestChildrenRejectsHostileDescriptors(t *testing.T) {
	config := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromString("config"), Size: 6}
	layer := func(name string) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString(name), Size: int64(len(name))}
	}
	manifestOf := func(config ocispec.Descriptor, layers ...ocispec.Descriptor) []byte {
		data, _ := json.Marshal(ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: config, Layers: layers})
		return data
	}
	indexOf := func(manifests ...ocispec.Descriptor) []byte {
		data, _ := json.Marshal(ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: manifests})
		return data
	}
	with := func(d ocispec.Descriptor, edit func(*ocispec.Descriptor)) ocispec.Descriptor {
		edit(&d)
		return d
	}
	goodManifest := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("m"), Size: 100}

	tests := []struct {
		name    string
		kind    string // media type of the parent
		data    []byte
		wantIs  error
		wantMsg string
	}{
		{"traversal layer digest", ocispec.MediaTypeImageManifest,
			manifestOf(config, layer("a"), layer("b"), with(layer("c"), func(d *ocispec.Descriptor) { d.Digest = "sha256:../../x" })),
			oci.ErrInvalidDigest, `: layers[2]: invalid digest "sha256:../../x"`},
		{"config without algorithm", ocispec.MediaTypeImageManifest,
			manifestOf(with(config, func(d *ocispec.Descriptor) { d.Digest = digest.Digest(d.Digest.Encoded()) }), layer("a")),
			oci.ErrInvalidDigest, ": config: invalid digest"},
		{"negative layer size", ocispec.MediaTypeImageManifest,
			manifestOf(config, with(layer("a"), func(d *ocispec.Descriptor) { d.Size = -5 })),
			nil, ": layers[0]: invalid size -5"},
		{"absurd layer size", ocispec.MediaTypeImageManifest,
			manifestOf(config, with(layer("a"), func(d *ocispec.Descriptor) { d.Size = 1 << 62 })),
			nil, ": layers[0]: invalid size"},
		{"huge config", ocispec.MediaTypeImageManifest,
			manifestOf(with(config, func(d *ocispec.Descriptor) { d.Size = 1 << 40 })),
			nil, ": config: invalid size"},
		{"layer without media type", ocispec.MediaTypeImageManifest,
			manifestOf(config, with(layer("a"), func(d *ocispec.Descriptor) { d.MediaType = "" })),
			oci.ErrInvalidMediaType, ": layers[0]: invalid media type"},
		{"unknown algorithm in index", ocispec.MediaTypeImageIndex,
			indexOf(goodManifest, with(goodManifest, func(d *ocispec.Descriptor) { d.Digest = digest.Digest("sha1:" + d.Digest.Encoded()[:40]) })),
			oci.ErrInvalidDigest, ": manifests[1]: invalid digest"},
		{"oversized manifest in index", ocispec.MediaTypeImageIndex,
			indexOf(with(goodManifest, func(d *ocispec.Descriptor) { d.Size = oci.MaxMetadataSize + 1 })),
			nil, ": manifests[0]: invalid size"},
		{"docker manifest list, uppercase hex", oci.DockerManifestList,
			indexOf(with(goodManifest, func(d *ocispec.Descriptor) { d.Digest = digest.Digest("sha256:" + strings.ToUpper(d.Digest.Encoded())) })),
			oci.ErrInvalidDigest, ": manifests[0]: invalid digest"},
		{"no config", ocispec.MediaTypeImageManifest,
			manifestOf(ocispec.Descriptor{}, layer("a")),
			nil, ": no config"},
		{"not JSON", ocispec.MediaTypeImageManifest, []byte("{"), nil, "decode manifest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := ocispec.Descriptor{MediaType: tt.kind, Digest: digest.FromBytes(tt.data), Size: int64(len(tt.data))}
			children, err := Children(parent, tt.data)
			if err == nil {
				t.Fatalf("Children accepted %s: %v", tt.data, children)
			}
			if children != nil {
				t.Errorf("Children returned %d children with its error", len(children))
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %q does not wrap %v", err, tt.wantIs)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.wantMsg) || !strings.Contains(msg, parent.Digest.String()) {
				t.Errorf("error %q does not name the parent %s and say %q", msg, parent.Digest, tt.wantMsg)
			}
			if strings.ContainsAny(msg, "\r\n") {
				t.Errorf("error spans lines: %q", msg)
			}
		})
	}
}
