package imagemount

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/fetch"
	"github.com/imgfs/imgfs/fusefs"
	"github.com/imgfs/imgfs/internal/oci"
)

// layoutName is the name an image gets in the mount's index.json: its tag,
// or for a digest-only reference "sha256-" and 12 hex digits.
func layoutName(ref fetch.Reference) string {
	if ref.Tag != "" {
		return ref.Tag
	}
	return ref.Digest.Algorithm().String() + "-" + ref.Digest.Encoded()[:12]
}

// buildImage turns what the handler chain reached into what the filesystem
// shows. The preferred platform (the first requested, else the host's)
// comes first: it is the one the plain name points at. Configs were left
// lazy by the walk; fetchConfig brings in the ones needed now: the
// preferred platform's (for the image's created time) and any whose
// platform only the config can tell.
func buildImage(ctx context.Context, store *cache.Store, ref fetch.Reference, tree *fetch.Tree, want []ocispec.Platform, fetchConfig func(context.Context, ocispec.Descriptor) error) (fusefs.Image, error) {
	img := fusefs.Image{Name: layoutName(ref), Root: tree.Root, Blobs: tree.Descriptors()}
	manifests := []ocispec.Descriptor{tree.Root}
	if oci.IsIndex(tree.Root.MediaType) {
		manifests = nil
		for _, m := range tree.Children(tree.Root.Digest) {
			if oci.IsManifest(m.MediaType) {
				manifests = append(manifests, m)
			}
		}
		data, err := store.ReadMetadata(ctx, tree.Root)
		if err != nil {
			return img, err
		}
		all, err := fetch.Children(tree.Root, data)
		if err != nil {
			return img, err
		}
		img.IndexComplete = len(manifests) == len(all)
	}
	for _, m := range manifests {
		p := fusefs.PlatformImage{Manifest: m, Platform: ocispec.Platform{OS: "unknown", Architecture: "unknown"}}
		for _, c := range tree.Children(m.Digest) {
			if oci.KindOf(c) == oci.KindConfig {
				p.Config = c
			} else {
				p.Layers = append(p.Layers, c)
			}
		}
		if m.Platform != nil {
			p.Platform = *m.Platform
		} else if config, err := readConfig(ctx, store, p.Config, fetchConfig); err != nil {
			return img, err
		} else if config.OS != "" {
			p.Platform = platforms.Normalize(ocispec.Platform{OS: config.OS, Architecture: config.Architecture, Variant: config.Variant})
		}
		img.Platforms = append(img.Platforms, p)
	}
	if len(img.Platforms) == 0 {
		return img, fmt.Errorf("%s: no image manifest to mount", ref)
	}
	preferred := fetch.PlatformMatcher(want)
	sort.SliceStable(img.Platforms, func(i, j int) bool {
		a, b := img.Platforms[i].Platform, img.Platforms[j].Platform
		am, bm := preferred.Match(a), preferred.Match(b)
		if am != bm {
			return am
		}
		return preferred.Less(a, b)
	})
	config, err := readConfig(ctx, store, img.Platforms[0].Config, fetchConfig)
	if err != nil {
		return img, err
	}
	if config.Created != nil {
		img.Created = *config.Created
	}
	return img, nil
}

// readConfig fetches a config if need be and decodes it. Configs of
// artifacts such as attestations are not image configs and decode to
// nothing, which is fine: their platform comes from the index.
func readConfig(ctx context.Context, store *cache.Store, desc ocispec.Descriptor, fetchConfig func(context.Context, ocispec.Descriptor) error) (ocispec.Image, error) {
	var config ocispec.Image
	if err := fetchConfig(ctx, desc); err != nil {
		return config, err
	}
	data, err := store.ReadMetadata(ctx, desc)
	if err != nil {
		return config, err
	}
	_ = json.Unmarshal(data, &config)
	return config, nil
}

// Platforms lists the mounted platforms, the default first, for a log
// line.
func (m *Mount) Platforms() string {
	img := m.img
	var names []string
	for _, p := range img.Platforms {
		names = append(names, platforms.Format(p.Platform))
	}
	return strings.Join(names, ", ")
}
