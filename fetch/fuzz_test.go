package fetch

import (
	"errors"
	"strings"
	"testing"

	"github.com/imgfs/imgfs/internal/oci"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// FuzzParseReference checks that no reference panics the parser, that an
// accepted one carries only a valid digest, and that it reads back as
// itself. Seeds are in testdata/fuzz/FuzzParseReference.
func FuzzParseReference(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseReference(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidReference) {
				t.Fatalf("ParseReference(%q) = %v, not ErrInvalidReference", s, err)
			}
			return
		}
		if ref.Digest != "" {
			if err := oci.CheckDigest(ref.Digest); err != nil {
				t.Fatalf("ParseReference(%q) accepted digest: %v", s, err)
			}
		}
		again, err := ParseReference(ref.String())
		if err != nil || again != ref {
			t.Fatalf("ParseReference(%q) = %+v, which reads back as %+v, %v", s, ref, again, err)
		}
	})
}

// FuzzChildren decodes bytes as an index or a manifest: it must never
// panic, every child it accepts must pass ValidateDescriptor, and an error
// must stay on one line. Seeds are in testdata/fuzz/FuzzChildren.
func FuzzChildren(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, isIndex bool) {
		mediaType := ocispec.MediaTypeImageManifest
		if isIndex {
			mediaType = ocispec.MediaTypeImageIndex
		}
		parent := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
		children, err := Children(parent, data)
		if err != nil {
			if children != nil {
				t.Fatalf("Children returned children with error %v", err)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("error spans lines: %q", err)
			}
			return
		}
		for i, c := range children {
			if err := oci.CheckDescriptor(c); err != nil {
				t.Fatalf("child %d accepted but invalid: %v", i, err)
			}
		}
		if !isIndex && len(children) == 0 {
			t.Fatal("manifest accepted without a config")
		}
	})
}
