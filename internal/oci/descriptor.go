package oci

import (
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// MaxBlobSize bounds the size a layer's descriptor may claim: 64 TiB, far
// above any real layer, and low enough that the sizes of a whole walk
// (MaxWalkDescriptors of them) add up without overflowing an int64. A claim
// under it costs nothing until bytes arrive. Indexes, manifests and configs
// are bounded by MaxMetadataSize instead, since they are read whole
// into memory.
const MaxBlobSize int64 = 64 << 40

// MaxMetadataSize bounds indexes, manifests and configs. They are read
// whole into memory, so a hostile registry must not be able to make them
// huge.
const MaxMetadataSize = 4 << 20

// CheckDescriptor checks what a registry said about a blob before any of
// it is used: the digest is well formed, of a supported algorithm
// (CheckDigest), the size is neither negative nor absurd for the
// descriptor's kind, and the media type is of the form type/subtype and
// bounded in length. The error names the first thing wrong in one line.
// Every descriptor that comes from the wire passes through it, so that no
// path, URL or hash is ever built from an unchecked digest.
func CheckDescriptor(desc ocispec.Descriptor) error {
	if err := CheckDigest(desc.Digest); err != nil {
		return err
	}
	if err := Check(desc.MediaType); err != nil {
		return err
	}
	kind := KindOf(desc)
	switch limit := sizeLimit(kind); {
	case desc.Size < 0:
		return fmt.Errorf("invalid size %d: negative", desc.Size)
	case desc.Size > limit:
		return fmt.Errorf("invalid size %d: over the %s limit for a %s", desc.Size, formatSize(limit), kind)
	}
	return nil
}

// sizeLimit returns the largest size a descriptor of kind may claim.
func sizeLimit(kind Kind) int64 {
	if kind == KindLayer {
		return MaxBlobSize
	}
	return MaxMetadataSize
}

// formatSize writes a limit in the binary unit that divides it.
func formatSize(n int64) string {
	for _, u := range []struct {
		shift uint
		name  string
	}{{40, "TiB"}, {30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d %s", n>>u.shift, u.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}
