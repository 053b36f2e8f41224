package indexpush

import (
	"errors"
	"fmt"
	"log/slog"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/fetch"
	"github.com/imgfs/imgfs/internal/layer/ztoc"
)

// Defaults, as SOCI's own (soci/soci_index.go).
const (
	// DefaultMinLayerSize is the smallest layer given a zTOC: a smaller
	// one is fetched whole more cheaply than its zTOC and a span.
	DefaultMinLayerSize = 10 << 20
	// DefaultSpanSize is the uncompressed bytes between two checkpoints.
	DefaultSpanSize = 4 << 20
	// DefaultBuildTool is the build tool the index and zTOCs name.
	DefaultBuildTool = "imgfs"
)

// Bounds on the span size. Each span costs a checkpoint and its 32 KiB
// window in the zTOC, so spans much under MinSpanSize make a zTOC larger
// than what it saves; and a reader fetches and holds a whole span's
// compressed bytes (at most ztoc.MaxSpan), which spans over MaxSpanSize
// of output could exceed.
const (
	MinSpanSize = 64 << 10
	MaxSpanSize = ztoc.MaxSpan / 2
)

// ErrBadOption marks an option out of its range; the error names it.
var ErrBadOption = errors.New("invalid option")

// Options say what Push indexes and how it publishes.
type Options struct {
	// Platforms selects the manifests of an image index, as fetch does;
	// empty means the host's platform.
	Platforms []ocispec.Platform
	// AllPlatforms selects every image manifest of an index.
	AllPlatforms bool
	// MinLayerSize: layers of fewer bytes get no zTOC. 0 means
	// DefaultMinLayerSize; a negative value means none is too small.
	MinLayerSize int64
	// SpanSize is the uncompressed bytes between checkpoints, from
	// MinSpanSize to MaxSpanSize. 0 means DefaultSpanSize.
	SpanSize int64
	// V2Tag, when set, publishes a SOCI-enabled v2 image under this tag
	// instead of v1 referrers of the image's manifests.
	V2Tag string
	// BuildTool names the builder in the index and its zTOCs; ""
	// means DefaultBuildTool.
	BuildTool string
	// OnLayer, when set, is told of each layer as its zTOC is built or
	// skipped, in manifest order.
	OnLayer func(LayerReport)
	// Log receives debug lines; nil discards them.
	Log *slog.Logger
}

// withDefaults checks o and fills in its defaults.
func (o Options) withDefaults() (Options, error) {
	switch {
	case o.MinLayerSize == 0:
		o.MinLayerSize = DefaultMinLayerSize
	case o.MinLayerSize < 0:
		o.MinLayerSize = 0
	}
	if o.SpanSize == 0 {
		o.SpanSize = DefaultSpanSize
	}
	if err := CheckSpanSize(o.SpanSize); err != nil {
		return o, err
	}
	if o.V2Tag != "" {
		if err := fetch.CheckTag(o.V2Tag); err != nil {
			return o, fmt.Errorf("%w: v2 %w", ErrBadOption, err)
		}
	}
	if o.BuildTool == "" {
		o.BuildTool = DefaultBuildTool
	}
	if o.OnLayer == nil {
		o.OnLayer = func(LayerReport) {}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// CheckSpanSize reports whether n is a span size Push accepts.
func CheckSpanSize(n int64) error {
	if n < MinSpanSize || n > MaxSpanSize {
		return fmt.Errorf("%w: span size %d: want %d KiB to %d MiB (SOCI's default is %d MiB)",
			ErrBadOption, n, MinSpanSize>>10, MaxSpanSize>>20, DefaultSpanSize>>20)
	}
	return nil
}
