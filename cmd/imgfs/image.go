package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/fetch"
	"github.com/imgfs/imgfs/fusefs"
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
// comes first: it is the one the plain name points at.
func buildImage(ctx context.Context, store *cache.Store, ref fetch.Reference, tree *fetch.Tree, want []ocispec.Platform) (fusefs.Image, error) {
	img := fusefs.Image{Name: layoutName(ref), Root: tree.Root, Blobs: tree.Descriptors()}
	manifests := []ocispec.Descriptor{tree.Root}
	if fetch.IsIndex(tree.Root.MediaType) {
		manifests = nil
		for _, m := range tree.Children(tree.Root.Digest) {
			if fetch.IsManifest(m.MediaType) {
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
		p, created, err := platformImage(ctx, store, m, tree.Children(m.Digest))
		if err != nil {
			return img, err
		}
		img.Platforms = append(img.Platforms, p)
		if img.Created.IsZero() || created.After(img.Created) {
			img.Created = created
		}
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
	return img, nil
}

// platformImage reads a manifest's config for the platform (when the index
// did not say) and the creation time.
func platformImage(ctx context.Context, store *cache.Store, manifest ocispec.Descriptor, children []ocispec.Descriptor) (fusefs.PlatformImage, time.Time, error) {
	p := fusefs.PlatformImage{Manifest: manifest}
	for _, c := range children {
		if fetch.KindOf(c) == fetch.KindConfig {
			p.Config = c
		} else {
			p.Layers = append(p.Layers, c)
		}
	}
	var config ocispec.Image
	if data, err := store.ReadMetadata(ctx, p.Config); err == nil {
		// Configs of artifacts such as attestations are not image configs;
		// their platform then comes from the index alone.
		_ = json.Unmarshal(data, &config)
	}
	switch {
	case manifest.Platform != nil:
		p.Platform = *manifest.Platform
	case config.OS != "":
		p.Platform = platforms.Normalize(ocispec.Platform{OS: config.OS, Architecture: config.Architecture, Variant: config.Variant})
	default:
		p.Platform = ocispec.Platform{OS: "unknown", Architecture: "unknown"}
	}
	var created time.Time
	if config.Created != nil {
		created = *config.Created
	}
	return p, created, nil
}

// describePlatforms lists the mounted platforms for the user.
func describePlatforms(img fusefs.Image) string {
	var names []string
	for _, p := range img.Platforms {
		names = append(names, platforms.Format(p.Platform))
	}
	return strings.Join(names, ", ")
}
