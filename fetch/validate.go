package fetch

import (
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/fetch/mediatype"
)

// MaxBlobSize bounds the size a layer's descriptor may claim: 64 TiB, far
// above any real layer, and low enough that the sizes of a whole walk
// (MaxWalkDescriptors of them) add up without overflowing an int64. A claim
// under it costs nothing until bytes arrive. Indexes, manifests and configs
// are bounded by cache.MaxMetadataSize instead, since they are read whole
// into memory.
const MaxBlobSize int64 = 64 << 40

// ValidateDescriptor checks what a registry said about a blob before any of
// it is used: the digest is well formed, of a supported algorithm
// (cache.CheckDigest), the size is neither negative nor absurd for the
// descriptor's kind, and the media type is of the form type/subtype and
// bounded in length. The error names the first thing wrong in one line.
// Every descriptor that comes from the wire passes through it, so that no
// path, URL or hash is ever built from an unchecked digest.
func ValidateDescriptor(desc ocispec.Descriptor) error {
	if err := cache.CheckDigest(desc.Digest); err != nil {
		return err
	}
	if err := mediatype.Check(desc.MediaType); err != nil {
		return err
	}
	kind := mediatype.KindOf(desc)
	switch limit := sizeLimit(kind); {
	case desc.Size < 0:
		return fmt.Errorf("invalid size %d: negative", desc.Size)
	case desc.Size > limit:
		return fmt.Errorf("invalid size %d: over the %s limit for a %s", desc.Size, formatSize(limit), kind)
	}
	return nil
}

// sizeLimit returns the largest size a descriptor of kind may claim.
func sizeLimit(kind mediatype.Kind) int64 {
	if kind == mediatype.KindLayer {
		return MaxBlobSize
	}
	return cache.MaxMetadataSize
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

// quoted returns d as it is when it is a valid digest, and quoted when it
// is not, so that an error naming it stays on one line whatever it holds.
func quoted(d digest.Digest) string {
	if cache.CheckDigest(d) == nil {
		return d.String()
	}
	return fmt.Sprintf("%q", string(d))
}
