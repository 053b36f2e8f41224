package oci

import (
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestLayerExt(t *testing.T) {
	for _, tt := range []struct{ mediaType, want string }{
		{ocispec.MediaTypeImageLayer, ".tar"},
		{ocispec.MediaTypeImageLayerGzip, ".tar.gz"},
		{ocispec.MediaTypeImageLayerZstd, ".tar.zst"},
		{"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", ".tar.gz"},
		{"application/vnd.docker.image.rootfs.diff.tar.gzip", ".tar.gz"},
		{"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", ".tar.gz"},
		{"application/vnd.docker.image.rootfs.diff.tar.zstd", ".tar.zst"},
		{"application/vnd.cncf.helm.chart.content.v1.tar+gzip", ".tar.gz"},
		{"application/octet-stream", ".blob"},
		{"", ".blob"},
	} {
		if got := LayerExt(tt.mediaType); got != tt.want {
			t.Errorf("LayerExt(%q) = %q, want %q", tt.mediaType, got, tt.want)
		}
	}
}
