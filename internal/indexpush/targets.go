package indexpush

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/fetch"
	"github.com/imgfs/imgfs/internal/oci"
	"github.com/imgfs/imgfs/internal/soci"
)

// ErrNoImage means the selection holds no image manifest to index.
var ErrNoImage = errors.New("no image manifest to index")

// ErrResolve marks a failure to resolve the reference; it wraps the
// registry client's error.
var ErrResolve = errors.New("resolve")

// image is the image a push starts from: its root as resolved, and the
// image manifests selected in it.
type image struct {
	root     ocispec.Descriptor
	rootData []byte
	targets  []target
}

// target is one selected image manifest.
type target struct {
	desc     ocispec.Descriptor // as the root lists it (or the root itself), Platform set
	data     []byte
	manifest ocispec.Manifest
	// parent is the index that lists it, nil for a root manifest.
	parent *ocispec.Descriptor
}

// selectImage resolves the remote's reference and walks the image's
// metadata into the cache through fetch's handler chain (so platform
// selection and every check on the way are fetch's), and returns the
// selected image manifests. Manifests that are not images are passed
// over: SOCI indexes of a SOCI-enabled image, attestations, artifacts.
func selectImage(ctx context.Context, remote *fetch.Remote, store *cache.Store, opts Options) (*image, error) {
	root, data, err := remote.Resolve(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrResolve, err)
	}
	tree, err := fetch.Walk(ctx, store, fetch.Origin{Root: root, RootData: data, Fetcher: remote, Repository: remote.Reference().Name()},
		fetch.WalkOptions{Platforms: opts.Platforms, AllPlatforms: opts.AllPlatforms, MetadataOnly: true, MaxConcurrent: 3})
	if err != nil {
		return nil, err
	}
	img := &image{root: root, rootData: data}
	var walk func(parent ocispec.Descriptor) error
	walk = func(parent ocispec.Descriptor) error {
		for _, d := range tree.Children(parent.Digest) {
			switch oci.KindOf(d) {
			case oci.KindIndex:
				if err := walk(d); err != nil {
					return err
				}
			case oci.KindManifest:
				p := parent
				if err := img.add(ctx, store, d, &p, opts); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if oci.IsManifest(root.MediaType) {
		err = img.add(ctx, store, root, nil, opts)
	} else {
		err = walk(root)
	}
	if err != nil {
		return nil, err
	}
	if len(img.targets) == 0 {
		return nil, fmt.Errorf("%w: %s lists none among the platforms selected (only SOCI indexes, attestations or other artifacts)", ErrNoImage, remote.Reference())
	}
	return img, nil
}

// add reads manifest desc from the cache and selects it if it is an
// image's.
func (img *image) add(ctx context.Context, store *cache.Store, desc ocispec.Descriptor, parent *ocispec.Descriptor, opts Options) error {
	if why := notImage(desc); why != "" {
		opts.Log.Debug("manifest passed over", "manifest", desc.Digest, "why", why)
		return nil
	}
	data, err := store.ReadMetadata(ctx, desc)
	if err != nil {
		return err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	if oci.KindOf(m.Config) != oci.KindConfig || m.Config.MediaType == oci.LegacyConfig {
		opts.Log.Debug("manifest passed over", "manifest", desc.Digest, "why", "config media type "+m.Config.MediaType)
		return nil
	}
	if desc.Platform == nil {
		p, err := configPlatform(ctx, store, m.Config)
		if err != nil {
			return fmt.Errorf("manifest %s: %w", desc.Digest, err)
		}
		desc.Platform = &p
	}
	img.targets = append(img.targets, target{desc: desc, data: data, manifest: m, parent: parent})
	return nil
}

// notImage says why an index entry is not an image manifest to index, or
// "" when it may be one.
func notImage(desc ocispec.Descriptor) string {
	switch {
	case desc.ArtifactType != "":
		return "an artifact (" + desc.ArtifactType + ")"
	case desc.Annotations[soci.AnnotationImageManifestDigest] != "":
		return "a SOCI index"
	case desc.Annotations["vnd.docker.reference.type"] != "":
		return "an attestation"
	case desc.Platform != nil && desc.Platform.OS == "unknown":
		return "platform unknown"
	}
	return ""
}

// configPlatform reads the platform an image config names, for a manifest
// no index lists.
func configPlatform(ctx context.Context, store *cache.Store, config ocispec.Descriptor) (ocispec.Platform, error) {
	data, err := store.ReadMetadata(ctx, config)
	if err != nil {
		return ocispec.Platform{}, err
	}
	var c ocispec.Image
	if err := json.Unmarshal(data, &c); err != nil {
		return ocispec.Platform{}, fmt.Errorf("config %s: %w", config.Digest, err)
	}
	if c.OS == "" || c.Architecture == "" {
		return ocispec.Platform{}, fmt.Errorf("config %s names no platform (os %s, architecture %s)", config.Digest, oci.Quote(c.OS), oci.Quote(c.Architecture))
	}
	return ocispec.Platform{OS: c.OS, Architecture: c.Architecture, Variant: c.Variant, OSVersion: c.OSVersion, OSFeatures: c.OSFeatures}, nil
}
