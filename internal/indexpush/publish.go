package indexpush

import (
	"bytes"
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/fetch"
	"github.com/imgfs/imgfs/internal/soci"
)

// pushIndex pushes the zTOCs, the config every index points at, and the
// SOCI index manifest of version v listing them (with subject for v1),
// by digest. It returns the index's descriptor as a referrers list or an
// image index shows it: artifactType and the index's annotations set.
func pushIndex(ctx context.Context, remote *fetch.Remote, v soci.Version, ztocs []*built, subject *ocispec.Descriptor, buildTool string) (ocispec.Descriptor, fetch.PushedManifest, error) {
	list := make([]soci.Built, len(ztocs))
	for i, z := range ztocs {
		if err := remote.PushBlob(ctx, z.desc, bytes.NewReader(z.data)); err != nil {
			return ocispec.Descriptor{}, fetch.PushedManifest{}, fmt.Errorf("zTOC of layer %s: %w", z.layer.Digest, err)
		}
		list[i] = soci.Built{Layer: z.layer, Ztoc: z.desc, SpanSize: z.spanSize}
	}
	manifest, config, err := soci.Marshal(v, list, subject, buildTool)
	if err != nil {
		return ocispec.Descriptor{}, fetch.PushedManifest{}, err
	}
	configDesc := ocispec.Descriptor{MediaType: v.ArtifactType(), Digest: digest.FromBytes(config), Size: int64(len(config))}
	if err := remote.PushBlob(ctx, configDesc, bytes.NewReader(config)); err != nil {
		return ocispec.Descriptor{}, fetch.PushedManifest{}, fmt.Errorf("SOCI index config: %w", err)
	}
	pushed, err := remote.PushManifest(ctx, ocispec.MediaTypeImageManifest, manifest, "")
	if err != nil {
		return ocispec.Descriptor{}, fetch.PushedManifest{}, fmt.Errorf("SOCI index: %w", err)
	}
	desc := pushed.Desc
	desc.ArtifactType = v.ArtifactType()
	desc.Annotations = map[string]string{soci.AnnotationBuildTool: buildTool}
	return desc, pushed, nil
}

// publishV1 pushes t's v1 SOCI index as a referrer of t's manifest and,
// where the registry did not index the subject itself, lists it in the
// referrers tag.
func publishV1(ctx context.Context, remote *fetch.Remote, t target, ztocs []*built, buildTool string) (Published, error) {
	subject := ocispec.Descriptor{MediaType: t.desc.MediaType, Digest: t.desc.Digest, Size: t.desc.Size}
	desc, pushed, err := pushIndex(ctx, remote, soci.V1, ztocs, &subject, buildTool)
	if err != nil {
		return Published{}, err
	}
	p := Published{Platform: *t.desc.Platform, Version: soci.V1, Source: subject, Manifest: subject, Index: desc, Ztocs: len(ztocs)}
	if !pushed.SubjectIndexed {
		if err := remote.AddToReferrersTag(ctx, subject, desc); err != nil {
			return Published{}, fmt.Errorf("SOCI index %s: %w", desc.Digest, err)
		}
		p.ReferrersTag = fetch.ReferrersTag(subject.Digest)
	}
	return p, nil
}
