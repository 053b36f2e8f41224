package oci

import (
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestKindOf(t *testing.T) {
	tests := []struct {
		mediaType string
		want      Kind
		metadata  bool
	}{
		{ocispec.MediaTypeImageIndex, KindIndex, true},
		{DockerManifestList, KindIndex, true},
		{ocispec.MediaTypeImageManifest, KindManifest, true},
		{DockerManifest, KindManifest, true},
		{ocispec.MediaTypeImageConfig, KindConfig, true},
		{DockerConfig, KindConfig, true},
		{LegacyConfig, KindConfig, true},
		{ocispec.MediaTypeImageLayerGzip, KindLayer, false},
		{DockerLayer, KindLayer, false},
		{"application/vnd.in-toto+json", KindLayer, false},
	}
	for _, tt := range tests {
		desc := ocispec.Descriptor{MediaType: tt.mediaType}
		if got := KindOf(desc); got != tt.want {
			t.Errorf("KindOf(%s) = %s, want %s", tt.mediaType, got, tt.want)
		}
		if got := IsMetadata(desc); got != tt.metadata {
			t.Errorf("IsMetadata(%s) = %v, want %v", tt.mediaType, got, tt.metadata)
		}
		if err := Check(tt.mediaType); err != nil {
			t.Errorf("Check(%s) = %v", tt.mediaType, err)
		}
	}
	if !IsSchema1(DockerSchema1JWS) || IsSchema1(DockerManifest) {
		t.Error("IsSchema1 tells schema1 wrongly")
	}
}
