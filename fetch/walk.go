package fetch

import (
	"context"
	"fmt"
	"strings"

	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/semaphore"

	"github.com/imgfs/imgfs/cache"
)

// WalkOptions choose what a walk fetches. They mirror ctr's flags.
type WalkOptions struct {
	// Platforms selects manifests; empty means the host platform.
	Platforms []ocispec.Platform
	// AllPlatforms walks every manifest of an index.
	AllPlatforms bool
	// AllMetadata walks every manifest and config, but layers only of the
	// selected platforms.
	AllMetadata bool
	// MetadataOnly leaves layers out entirely.
	MetadataOnly bool
	// Lazy lists kinds of descriptor recorded but not fetched: the mount
	// leaves layers and configs to be read on demand.
	Lazy []Kind
	// Limit keeps at most this many manifests per index (0: all matches).
	Limit int
	// MaxConcurrent bounds handlers running at once.
	MaxConcurrent int
	Progress      Progress
}

// Walk fetches the image whose root descriptor and bytes Resolve returned,
// through the handler chain that opts select, and returns what it reached.
// Bytes the cache lacks come from src; source names the repository they
// come from, for the cache's provenance records.
func Walk(ctx context.Context, store *cache.Store, src cache.Fetcher, source string, root ocispec.Descriptor, rootData []byte, opts WalkOptions) (*Tree, error) {
	matcher := PlatformMatcher(opts.Platforms)
	src = Preloaded{Fetcher: src, Desc: root, Data: rootData}
	var fetcher Handler = FetchHandler(store, src, source, opts.Progress)
	if len(opts.Lazy) > 0 {
		fetcher = SkipKinds(fetcher, opts.Lazy...)
	}
	var h Handler = Handlers(fetcher, ChildrenHandler(store))
	switch {
	case opts.AllPlatforms:
	case opts.AllMetadata:
		h = FilterManifestByPlatform(h, matcher)
	default:
		h = FilterPlatforms(h, matcher)
	}
	if opts.Limit > 0 && !opts.AllPlatforms {
		h = LimitManifests(h, matcher, opts.Limit)
	}
	if opts.MetadataOnly {
		h = DropLayers(h)
	}
	tree := NewTree(root)
	limit := int64(max(opts.MaxConcurrent, 1))
	if err := Dispatch(ctx, tree.Record(h), semaphore.NewWeighted(limit), root); err != nil {
		return nil, err
	}
	if IsIndex(root.MediaType) && len(tree.Children(root.Digest)) == 0 {
		return nil, noMatchError(ctx, store, root, opts.Platforms)
	}
	return tree, nil
}

// PlatformMatcher matches the given platforms in order of preference, or
// the host platform when none is given, as ctr does.
func PlatformMatcher(ps []ocispec.Platform) platforms.MatchComparer {
	if len(ps) == 0 {
		return platforms.Default()
	}
	return platforms.Ordered(ps...)
}

// ParsePlatforms parses --platform values such as "linux/arm64/v8".
func ParsePlatforms(specs []string) ([]ocispec.Platform, error) {
	var out []ocispec.Platform
	for _, s := range specs {
		for _, one := range strings.Split(s, ",") {
			p, err := platforms.Parse(strings.TrimSpace(one))
			if err != nil {
				return nil, fmt.Errorf("--platform %q: %w", one, err)
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// noMatchError says which platforms the index offers when none matched.
func noMatchError(ctx context.Context, store *cache.Store, root ocispec.Descriptor, want []ocispec.Platform) error {
	wanted := "the host platform " + platforms.Format(platforms.DefaultSpec())
	if len(want) > 0 {
		var names []string
		for _, p := range want {
			names = append(names, platforms.Format(p))
		}
		wanted = strings.Join(names, ", ")
	}
	var offered []string
	if data, err := store.ReadMetadata(ctx, root); err == nil {
		children, _ := Children(root, data)
		for _, c := range children {
			if c.Platform != nil {
				offered = append(offered, platforms.Format(*c.Platform))
			}
		}
	}
	return fmt.Errorf("%w: no manifest for %s in index %s (it has: %s); pick one with --platform or use --all-platforms",
		ErrNotFound, wanted, root.Digest, strings.Join(offered, ", "))
}
