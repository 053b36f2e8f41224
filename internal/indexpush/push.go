package indexpush

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/fetch"
	"github.com/imgfs/imgfs/internal/soci"
)

// ErrNoLayer means no layer of the selected manifests qualifies for a
// zTOC; the error counts what they are instead.
var ErrNoLayer = errors.New("nothing to index")

// Push builds a zTOC of every qualifying layer of the image that remote's
// reference names and publishes them in remote's repository: a v1 SOCI
// index per selected image manifest, as its referrer, or with
// opts.V2Tag a SOCI-enabled v2 image under that tag. Layer bytes come
// from store when it has them whole, else from remote through store, and
// each is verified against its digest before its zTOC is trusted.
//
// All zTOCs are built before anything is pushed: a layer that fails to
// verify or to inflate, or a selection with no layer to index
// (ErrNoLayer), pushes nothing. A push that fails partway may leave blobs
// and index manifests that nothing refers to yet; pushing again reuses
// them.
func Push(ctx context.Context, remote *fetch.Remote, store *cache.Store, opts Options) (*Result, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	img, err := selectImage(ctx, remote, store, opts)
	if err != nil {
		return nil, err
	}
	if err := anyLayer(img, opts, remote.Reference().String()); err != nil {
		return nil, err
	}
	// A refusal to push is better learned before the layers are read.
	if err := remote.CheckPush(ctx); err != nil {
		return nil, err
	}
	ztocs, err := buildAll(ctx, remote, store, img, opts)
	if err != nil {
		return nil, err
	}
	if len(slices.Concat(ztocs...)) == 0 {
		return nil, fmt.Errorf("%w: no layer of %s could be described by a zTOC", ErrNoLayer, remote.Reference())
	}
	if opts.V2Tag != "" {
		return publishV2(ctx, remote, img, ztocs, opts)
	}
	res := &Result{}
	for i, t := range img.targets {
		if len(ztocs[i]) == 0 {
			continue
		}
		p, err := publishV1(ctx, remote, t, ztocs[i], opts.BuildTool)
		if err != nil {
			return res, err
		}
		res.Indexes = append(res.Indexes, p)
	}
	return res, nil
}

// anyLayer returns ErrNoLayer, counting why, when no layer of the
// selected manifests qualifies.
func anyLayer(img *image, opts Options, ref string) error {
	counts := map[string]int{}
	var kinds []string
	for _, t := range img.targets {
		for _, l := range t.manifest.Layers {
			s, skipped := skipReason(l, opts.MinLayerSize)
			if !skipped {
				return nil
			}
			if counts[s.kind] == 0 {
				kinds = append(kinds, s.kind)
			}
			counts[s.kind]++
		}
	}
	if len(kinds) == 0 {
		return fmt.Errorf("%w: %s has no layers", ErrNoLayer, ref)
	}
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%d %s", counts[k], k)
	}
	return fmt.Errorf("%w: no layer of %s qualifies for a zTOC (a gzip layer of at least the minimum layer size): %s",
		ErrNoLayer, ref, strings.Join(parts, ", "))
}

// buildAll builds the zTOCs of every target's qualifying layers, in
// manifest order, one layer at a time, each layer once however many
// manifests list it. It tells opts.OnLayer of each layer.
func buildAll(ctx context.Context, remote *fetch.Remote, store *cache.Store, img *image, opts Options) ([][]*built, error) {
	done := map[digest.Digest]*built{}
	refused := map[digest.Digest]string{} // layers a zTOC cannot describe
	out := make([][]*built, len(img.targets))
	for i, t := range img.targets {
		listed := map[digest.Digest]bool{}
		for _, l := range t.manifest.Layers {
			rep := LayerReport{Platform: *t.desc.Platform, Manifest: t.desc.Digest, Layer: l}
			s, skipped := skipReason(l, opts.MinLayerSize)
			switch {
			case skipped:
			case listed[l.Digest]:
				// A SOCI index has one zTOC per layer digest.
				s, skipped = skip{why: "listed again: its zTOC is listed once"}, true
			case refused[l.Digest] != "":
				s, skipped = skip{why: refused[l.Digest]}, true
			}
			if skipped {
				rep.Skipped = s.why
				opts.OnLayer(rep)
				continue
			}
			b := done[l.Digest]
			if b == nil {
				var err error
				b, err = buildZtoc(ctx, store, remote, l, opts)
				var u *unrepresentable
				if errors.As(err, &u) {
					refused[l.Digest] = "holds what a zTOC cannot describe (" + u.Error() + ")"
					rep.Skipped = refused[l.Digest]
					opts.OnLayer(rep)
					continue
				}
				if err != nil {
					return nil, err
				}
				done[l.Digest] = b
			}
			listed[l.Digest] = true
			out[i] = append(out[i], b)
			rep.Ztoc, rep.Spans, rep.Cached = b.desc, b.spans, b.cached
			opts.OnLayer(rep)
		}
	}
	return out, nil
}

// publishV2 pushes each target's v2 SOCI index and SOCI-enabled manifest,
// then the image index listing them under opts.V2Tag.
func publishV2(ctx context.Context, remote *fetch.Remote, img *image, ztocs [][]*built, opts Options) (*Result, error) {
	res := &Result{}
	var conv []converted
	for i, t := range img.targets {
		if len(ztocs[i]) == 0 {
			continue
		}
		if t.parent != nil && t.parent.Digest != img.root.Digest {
			return res, fmt.Errorf("manifest %s is listed by the nested index %s: a SOCI-enabled image lists its manifests in its own image index", t.desc.Digest, t.parent.Digest)
		}
		index, _, err := pushIndex(ctx, remote, soci.V2, ztocs[i], nil, opts.BuildTool)
		if err != nil {
			return res, err
		}
		data, annotations, err := enableManifest(t.manifest, index.Digest)
		if err != nil {
			return res, err
		}
		pushed, err := remote.PushManifest(ctx, ocispec.MediaTypeImageManifest, data, "")
		if err != nil {
			return res, fmt.Errorf("SOCI-enabled manifest: %w", err)
		}
		m, x := listing(pushed.Desc, annotations, index, *t.desc.Platform)
		conv = append(conv, converted{source: t.desc, manifest: m, index: x})
		source := t.desc
		source.Platform, source.Annotations = nil, nil
		res.Indexes = append(res.Indexes, Published{Platform: *t.desc.Platform, Version: soci.V2, Source: source, Manifest: m, Index: x, Ztocs: len(ztocs[i])})
	}
	data, err := enableIndex(img.root, img.rootData, conv)
	if err != nil {
		return res, err
	}
	pushed, err := remote.PushManifest(ctx, ocispec.MediaTypeImageIndex, data, opts.V2Tag)
	if err != nil {
		return res, fmt.Errorf("SOCI-enabled image index: %w", err)
	}
	res.Image, res.Tag = pushed.Desc, opts.V2Tag
	return res, nil
}
