package fetch

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/semaphore"

	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/oci"
)

// Origin is where a walk starts and where the bytes it lacks come from.
type Origin struct {
	// Root and RootData are the descriptor and bytes Resolve returned (or
	// the cache's record of them).
	Root     ocispec.Descriptor
	RootData []byte
	// Fetcher serves every other blob the store lacks.
	Fetcher blobio.Fetcher
	// Repository names where the bytes come from, such as
	// "docker.io/library/nginx", for the cache's provenance records.
	Repository string
}

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
	Lazy []oci.Kind
	// Limit keeps at most this many manifests per index (0: all matches).
	Limit int
	// MaxConcurrent bounds handlers running at once.
	MaxConcurrent int
	Progress      Progress
}

// Walk fetches the image at from.Root into store through the handler chain
// that opts select, and returns what it reached. The root is validated
// first; every descriptor below it is validated as its parent is decoded.
// Each digest is handled once, and the walk fails as soon as it would go
// past MaxWalkDepth or MaxWalkDescriptors.
func Walk(ctx context.Context, store Store, from Origin, opts WalkOptions) (*Tree, error) {
	root := from.Root
	if err := oci.CheckDescriptor(root); err != nil {
		return nil, fmt.Errorf("image root: %w", err)
	}
	matcher := PlatformMatcher(opts.Platforms)
	src := Preloaded{Fetcher: from.Fetcher, Desc: root, Data: from.RootData}
	var fetcher Handler = FetchHandler(store, src, from.Repository, opts.Progress)
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
	// The tree records every child a descriptor lists; the bounds then
	// pass on to Dispatch only those not seen before.
	if err := Dispatch(ctx, boundWalk(root, tree.Record(h)), semaphore.NewWeighted(limit), root); err != nil {
		return nil, err
	}
	if oci.IsIndex(root.MediaType) && len(tree.Children(root.Digest)) == 0 {
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

// ParsePlatforms parses platform names such as "linux/arm64/v8", each
// value a comma-separated list.
func ParsePlatforms(specs []string) ([]ocispec.Platform, error) {
	var out []ocispec.Platform
	for _, s := range specs {
		for _, one := range strings.Split(s, ",") {
			p, err := platforms.Parse(strings.TrimSpace(one))
			if err != nil {
				return nil, fmt.Errorf("platform %q: %w", one, err)
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// noMatchError says which platforms the index offers when none matched.
func noMatchError(ctx context.Context, store Provider, root ocispec.Descriptor, want []ocispec.Platform) error {
	wanted := "the host platform " + platforms.Format(platforms.DefaultSpec())
	if len(want) > 0 {
		var names []string
		for _, p := range want {
			names = append(names, platforms.Format(p))
		}
		wanted = strings.Join(names, ", ")
	}
	return fmt.Errorf("%w: no manifest for %s in index %s (it has: %s)",
		ErrNoPlatform, wanted, root.Digest, offeredPlatforms(ctx, store, root))
}

// offeredPlatforms lists the distinct platforms an index names, a few at
// most and each on one line, since the registry wrote them.
func offeredPlatforms(ctx context.Context, store Provider, root ocispec.Descriptor) string {
	const most = 8
	data, err := store.ReadMetadata(ctx, root)
	if err != nil {
		return "unknown"
	}
	children, _ := Children(root, data)
	var offered []string
	more := 0
	for _, c := range children {
		if c.Platform == nil {
			continue
		}
		p := platforms.Format(*c.Platform)
		if !strconv.CanBackquote(p) {
			p = strconv.Quote(p)
		}
		switch {
		case slices.Contains(offered, p):
		case len(offered) < most:
			offered = append(offered, p)
		default:
			more++
		}
	}
	if more > 0 {
		offered = append(offered, fmt.Sprintf("and %d more", more))
	}
	return strings.Join(offered, ", ")
}
