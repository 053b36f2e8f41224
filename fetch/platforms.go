package fetch

import (
	"context"
	"slices"
	"sort"

	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/oci"
)

// FilterPlatforms wraps f so that children naming a platform are kept only
// when matcher accepts it. Children without a platform are always kept.
func FilterPlatforms(f Handler, matcher platforms.Matcher) HandlerFunc {
	return func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		children, err := f.Handle(ctx, desc)
		if err != nil {
			return children, err
		}
		return keep(children, func(c ocispec.Descriptor) bool {
			return c.Platform == nil || matcher.Match(*c.Platform)
		}), nil
	}
}

// keep returns the descriptors for which pred holds, in a new slice.
func keep(descs []ocispec.Descriptor, pred func(ocispec.Descriptor) bool) []ocispec.Descriptor {
	var kept []ocispec.Descriptor
	for _, d := range descs {
		if pred(d) {
			kept = append(kept, d)
		}
	}
	return kept
}

// LimitManifests wraps f so that an index yields at most n manifests, the
// best matches first as ordered by comparer. n <= 0 means no limit.
func LimitManifests(f Handler, comparer platforms.MatchComparer, n int) HandlerFunc {
	return func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		children, err := f.Handle(ctx, desc)
		if err != nil || !oci.IsIndex(desc.MediaType) {
			return children, err
		}
		sorted := append([]ocispec.Descriptor(nil), children...)
		sort.SliceStable(sorted, func(i, j int) bool {
			if sorted[i].Platform == nil {
				return false
			}
			if sorted[j].Platform == nil {
				return true
			}
			return comparer.Less(*sorted[i].Platform, *sorted[j].Platform)
		})
		if n > 0 && len(sorted) > n {
			sorted = sorted[:n]
		}
		return sorted, nil
	}
}

// FilterManifestByPlatform wraps f so that manifests of every platform are
// walked, but only manifests whose platform matcher accepts yield their
// layers; the others yield just their config. This is --all-metadata.
func FilterManifestByPlatform(f Handler, matcher platforms.Matcher) HandlerFunc {
	return func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		children, err := f.Handle(ctx, desc)
		if err != nil || !oci.IsManifest(desc.MediaType) || desc.Platform == nil || matcher.Match(*desc.Platform) {
			return children, err
		}
		return keep(children, func(c ocispec.Descriptor) bool { return oci.KindOf(c) == oci.KindConfig }), nil
	}
}

// SkipKinds wraps f so that it is not called for descriptors of the given
// kinds. The mount walks layers (to learn their descriptors) but reads them
// lazily later; it defers configs too, all but the one it shows first.
func SkipKinds(f Handler, kinds ...oci.Kind) HandlerFunc {
	return func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		if slices.Contains(kinds, oci.KindOf(desc)) {
			return nil, nil
		}
		return f.Handle(ctx, desc)
	}
}

// DropLayers wraps f so that layers are never walked: --metadata-only.
func DropLayers(f Handler) HandlerFunc {
	return func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		children, err := f.Handle(ctx, desc)
		if err != nil || !oci.IsManifest(desc.MediaType) {
			return children, err
		}
		return keep(children, func(c ocispec.Descriptor) bool { return oci.KindOf(c) != oci.KindLayer }), nil
	}
}
