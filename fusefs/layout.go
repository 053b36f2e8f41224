package fusefs

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/oci"
)

// ociLayout is the content of the layout's oci-layout file. umoci refuses a
// layout whose version is missing or different.
const ociLayout = `{"imageLayoutVersion":"1.0.0"}`

// errInvalidImage reports an Image that cannot be laid out, such as one
// without a name or without platforms.
var errInvalidImage = errors.New("invalid image")

// layoutIndex returns the index.json of the mount's OCI image layout. It
// names the default platform's manifest <Name>, because umoci rejects a name
// that points at an index. When the root is an index it also names every
// platform <Name>-<os>-<arch>[-<variant>], and, if the whole index was
// reached, the index itself <Name>-index, for skopeo copy --all. A root
// the registry served in Docker media types, shown as its OCI twin, is
// named <Name>-docker as served. Names are deterministic and unique.
func layoutIndex(img Image) ([]byte, error) {
	refs, err := layoutRefs(img)
	if err != nil {
		return nil, err
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: refs}
	idx.SchemaVersion = 2
	b, err := json.Marshal(idx)
	if err != nil {
		return nil, fmt.Errorf("encode index.json: %w", err)
	}
	return b, nil
}

// layoutRefs lists the named descriptors of index.json, in order.
func layoutRefs(img Image) ([]ocispec.Descriptor, error) {
	if err := validate(img); err != nil {
		return nil, err
	}
	def := img.Platforms[0]
	refs := []ocispec.Descriptor{named(def.Manifest, platformOf(def), img.Name)}
	if r := img.RegistryRoot; r != nil {
		p := platformOf(def)
		if oci.IsIndex(r.MediaType) {
			p = nil
		}
		refs = append(refs, named(*r, p, img.Name+"-docker"))
	}
	if !oci.IsIndex(img.Root.MediaType) {
		return refs, nil
	}
	for i, dir := range platformDirs(img.Platforms) {
		p := img.Platforms[i]
		refs = append(refs, named(p.Manifest, platformOf(p), img.Name+"-"+dir))
	}
	if img.IndexComplete {
		refs = append(refs, named(img.Root, nil, img.Name+"-index"))
	}
	return refs, nil
}

// validate rejects images the layout cannot name.
func validate(img Image) error {
	switch {
	case img.Name == "":
		return fmt.Errorf("%w: empty name", errInvalidImage)
	case len(img.Platforms) == 0:
		return fmt.Errorf("%w %s: no platforms", errInvalidImage, img.Name)
	case img.Root.Digest == "":
		return fmt.Errorf("%w %s: no root descriptor", errInvalidImage, img.Name)
	}
	descs := append([]ocispec.Descriptor{img.Root}, img.Blobs...)
	if img.RegistryRoot != nil {
		descs = append(descs, *img.RegistryRoot)
	}
	for _, p := range img.Platforms {
		descs = append(append(descs, p.Manifest, p.Config), p.Layers...)
	}
	for _, d := range descs {
		if oci.CheckDigest(d.Digest) != nil || d.Size < 0 {
			return fmt.Errorf("%w %s: bad descriptor %q (size %d)", errInvalidImage, img.Name, d.Digest, d.Size)
		}
	}
	return nil
}

// named returns the index.json entry for d: only the fields clients need,
// so nothing of the source descriptor leaks into the layout by accident.
func named(d ocispec.Descriptor, p *ocispec.Platform, name string) ocispec.Descriptor {
	return ocispec.Descriptor{
		MediaType:   d.MediaType,
		Digest:      d.Digest,
		Size:        d.Size,
		Platform:    p,
		Annotations: map[string]string{ocispec.AnnotationRefName: name},
	}
}

// platformOf returns the platform of p, or nil when it is unknown.
func platformOf(p PlatformImage) *ocispec.Platform {
	if p.Platform.OS == "" && p.Platform.Architecture == "" {
		return nil
	}
	pl := p.Platform
	return &pl
}

// platformDir returns the directory name of a platform,
// <os>-<arch>[-<variant>], e.g. linux-arm64-v8. Unknown parts read
// "unknown", and characters that do not belong in a file or reference name
// become "_".
func platformDir(p ocispec.Platform) string {
	parts := []string{orUnknown(p.OS), orUnknown(p.Architecture)}
	if p.Variant != "" {
		parts = append(parts, p.Variant)
	}
	for i, s := range parts {
		parts[i] = sanitize(s)
	}
	return strings.Join(parts, "-")
}

// platformDirs returns one unique directory name per platform, in order.
// Platforms that share <os>-<arch>[-<variant>] (Windows OS versions, say)
// get "-2", "-3", ... so that names stay unique and deterministic.
func platformDirs(ps []PlatformImage) []string {
	taken := make(map[string]bool, len(ps))
	dirs := make([]string, len(ps))
	for i, p := range ps {
		base := platformDir(p.Platform)
		name := base
		for n := 2; taken[name]; n++ {
			name = base + "-" + strconv.Itoa(n)
		}
		taken[name] = true
		dirs[i] = name
	}
	return dirs
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// sanitize keeps [A-Za-z0-9._] and replaces anything else, which could
// break a path or a reference name, with "_". Dashes go too, because they
// separate the parts of a platform name.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_':
			return r
		}
		return '_'
	}, s)
}

// layerNames returns the friendly names of layers:
// <n>-<first 12 hex of digest><ext>, n counted from 0 and zero-padded to
// the width of the last index so that the names sort in layer order.
func layerNames(layers []ocispec.Descriptor) []string {
	width := len(strconv.Itoa(max(len(layers)-1, 0)))
	names := make([]string, len(layers))
	for i, l := range layers {
		names[i] = fmt.Sprintf("%0*d-%s%s", width, i, shortHex(l), oci.LayerExt(l.MediaType))
	}
	return names
}

// shortHex returns the first 12 hex digits of a descriptor's digest.
func shortHex(d ocispec.Descriptor) string {
	enc := d.Digest.Encoded()
	return enc[:min(12, len(enc))]
}
