package oci

import (
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestCheckDescriptor(t *testing.T) {
	good := digest.FromString("layer")
	hex := good.Encoded()
	layer := func(d digest.Digest, size int64) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: d, Size: size}
	}
	typed := func(mt string) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: mt, Digest: good, Size: 1}
	}
	tests := []struct {
		name    string
		desc    ocispec.Descriptor
		wantIs  error  // nil: any error will do if wantMsg is set
		wantMsg string // "" with wantIs nil: valid
	}{
		{"sha256 layer", layer(good, 5), nil, ""},
		{"sha512 layer", layer(digest.SHA512.FromString("layer"), 5), nil, ""},
		{"empty layer", layer(good, 0), nil, ""},
		{"15 TiB layer claim", layer(good, 15<<40), nil, ""},
		{"largest layer", layer(good, MaxBlobSize), nil, ""},
		{"largest manifest", ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: good, Size: MaxMetadataSize}, nil, ""},
		{"vendor media type", typed("application/vnd.in-toto+json"), nil, ""},

		{"traversal", layer("sha256:../../../../etc/passwd", 5), ErrInvalidDigest, `"sha256:../../../../etc/passwd"`},
		{"traversal with sha256 length", layer(digest.Digest("sha256:../"+hex[3:]), 5), ErrInvalidDigest, "invalid digest"},
		{"no algorithm", layer(digest.Digest(hex), 5), ErrInvalidDigest, "invalid digest"},
		{"empty digest", layer("", 5), ErrInvalidDigest, "invalid digest"},
		{"algorithm only", layer("sha256:", 5), ErrInvalidDigest, "invalid digest"},
		{"short", layer(digest.Digest("sha256:"+hex[:63]), 5), ErrInvalidDigest, "invalid digest"},
		{"long", layer(digest.Digest("sha256:"+hex+"0"), 5), ErrInvalidDigest, "invalid digest"},
		{"unknown algorithm", layer(digest.Digest("md5:"+hex[:32]), 5), ErrInvalidDigest, "invalid digest"},
		{"sha384", layer(digest.Digest("sha384:"+hex+hex[:32]), 5), ErrInvalidDigest, "invalid digest"},
		{"uppercase hex", layer(digest.Digest("sha256:"+strings.ToUpper(hex)), 5), ErrInvalidDigest, "invalid digest"},
		{"uppercase algorithm", layer(digest.Digest("SHA256:"+hex), 5), ErrInvalidDigest, "invalid digest"},
		{"newline in digest", layer(digest.Digest("sha256:"+hex[:32]+"\n"+hex[33:]), 5), ErrInvalidDigest, "invalid digest"},

		{"negative size", layer(good, -1), nil, "invalid size -1: negative"},
		{"absurd layer", layer(good, MaxBlobSize+1), nil, "over the 64 TiB limit for a layer"},
		{"manifest over metadata limit", ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: good, Size: MaxMetadataSize + 1}, nil, "over the 4 MiB limit for a manifest"},
		{"15 TiB config", ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: good, Size: 15 << 40}, nil, "limit for a config"},

		{"no media type", typed(""), ErrInvalidMediaType, "missing"},
		{"no subtype", typed("application"), ErrInvalidMediaType, "want type/subtype"},
		{"empty subtype", typed("application/"), ErrInvalidMediaType, "bad subtype"},
		{"empty type", typed("/json"), ErrInvalidMediaType, "bad type"},
		{"two slashes", typed("application/vnd/x"), ErrInvalidMediaType, "bad subtype"},
		{"parameters", typed("application/json; charset=utf-8"), ErrInvalidMediaType, "bad subtype"},
		{"header injection", typed("application/json\r\nX-Evil: 1"), ErrInvalidMediaType, "bad subtype"},
		{"too long", typed("application/" + strings.Repeat("x", 300)), ErrInvalidMediaType, "over 255"},
		{"subtype over 127", typed("a/" + strings.Repeat("x", 128)), ErrInvalidMediaType, "bad subtype"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckDescriptor(tt.desc)
			if tt.wantIs == nil && tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("CheckDescriptor = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("CheckDescriptor = nil, want an error")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %q does not wrap %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not say %q", err, tt.wantMsg)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}
