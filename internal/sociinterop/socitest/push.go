package socitest

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"time"

	"github.com/awslabs/soci-snapshotter/soci"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/testregistry"
)

// Created is the creation time of the images pushed here, fixed so that
// their digests are the same on every run.
var Created = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Image is a single-platform OCI image pushed by PushImage, with the bytes
// of everything in it.
type Image struct {
	Repo, Tag string
	// Manifest is the manifest's descriptor as resolving Tag gives it.
	Manifest      ocispec.Descriptor
	ManifestBytes []byte
	Config        ocispec.Descriptor
	ConfigBytes   []byte
	Layers        []ocispec.Descriptor
	// Blobs are the layers' bytes, in the order of Layers.
	Blobs    [][]byte
	Platform ocispec.Platform
}

// Platform is the platform of the images pushed here: linux on this
// machine's architecture, the one imgfs mount picks by default.
func Platform() ocispec.Platform {
	return ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
}

// PushImage pushes an OCI image of layers, base first, under tag (by
// digest only when tag is ""), with a config listing their diff_ids.
func (c *Client) PushImage(repo, tag string, layers ...testregistry.PreparedLayer) (Image, error) {
	img := Image{Repo: repo, Tag: tag, Platform: Platform()}
	diffIDs := []digest.Digest{}
	for i, l := range layers {
		if _, err := c.PushBlob(repo, l.Data); err != nil {
			return img, fmt.Errorf("push %s: layer %d: %w", repo, i, err)
		}
		img.Layers = append(img.Layers, l.Descriptor())
		img.Blobs = append(img.Blobs, l.Data)
		diffIDs = append(diffIDs, l.DiffID)
	}
	created := Created
	cfg, err := json.Marshal(ocispec.Image{
		Created:  &created,
		Platform: img.Platform,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
	})
	if err != nil {
		return img, err
	}
	img.ConfigBytes = cfg
	if img.Config, err = c.PushBlob(repo, cfg); err != nil {
		return img, fmt.Errorf("push %s: config: %w", repo, err)
	}
	img.Config.MediaType = ocispec.MediaTypeImageConfig
	man, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    img.Config,
		Layers:    append([]ocispec.Descriptor{}, img.Layers...),
	})
	if err != nil {
		return img, err
	}
	img.ManifestBytes = man
	img.Manifest, err = c.PushManifest(repo, tag, ocispec.MediaTypeImageManifest, man)
	return img, err
}

// PushIndex pushes idx's zTOCs, SOCI's "{}" config and the index manifest
// itself, by digest, to repo. A registry with the referrers API then lists
// a v1 index among its subject's referrers; an older one only stores it
// (see AddToReferrersTag).
func (c *Client) PushIndex(repo string, idx *Index) error {
	for _, z := range idx.Ztocs {
		if _, err := c.PushBlob(repo, z.Bytes); err != nil {
			return fmt.Errorf("push zTOC of %s: %w", z.Layer.Digest, err)
		}
	}
	if _, err := c.PushBlob(repo, ConfigBytes); err != nil {
		return fmt.Errorf("push SOCI index config: %w", err)
	}
	if _, err := c.PushManifest(repo, "", idx.Desc.MediaType, idx.Manifest); err != nil {
		return fmt.Errorf("push SOCI index: %w", err)
	}
	return nil
}

// ReferrerDescriptor is the v1 index's entry in its subject's referrers
// list as oras-go, through which SOCI pushes, writes it into the fallback
// tag's index (registry/remote/repository.go, indexReferrersForPush): the
// manifest's media type, digest and size, its artifactType field or, when
// that is empty, as SOCI leaves it, its config's media type, and its
// annotations.
func (x *Index) ReferrerDescriptor() ocispec.Descriptor {
	var m ocispec.Manifest
	json.Unmarshal(x.Manifest, &m) // NewIndex has checked it decodes
	at := m.ArtifactType
	if at == "" {
		at = m.Config.MediaType
	}
	return ocispec.Descriptor{
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: at,
		Digest:       x.Desc.Digest,
		Size:         x.Desc.Size,
		Annotations:  maps.Clone(m.Annotations),
	}
}

// AddToReferrersTag adds desc to the OCI image index tagged
// testregistry.ReferrersTag(subject), the distribution spec 1.1's fallback
// for registries without the referrers API, keeping what it listed, as a
// client pushing a referrer to such a registry does.
func (c *Client) AddToReferrersTag(repo string, subject digest.Digest, desc ocispec.Descriptor) (ocispec.Descriptor, error) {
	tag := testregistry.ReferrersTag(subject)
	index := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	old, _, err := c.Manifest(repo, tag)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return ocispec.Descriptor{}, err
	default:
		if err := json.Unmarshal(old, &index); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("referrers tag %s: %w", tag, err)
		}
	}
	if !slices.ContainsFunc(index.Manifests, func(d ocispec.Descriptor) bool { return d.Digest == desc.Digest }) {
		index.Manifests = append(index.Manifests, desc)
	}
	body, err := json.Marshal(index)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return c.PushManifest(repo, tag, ocispec.MediaTypeImageIndex, body)
}

// PushV1 builds a v1 SOCI index of img with SOCI's code (a zTOC per layer
// that opts allows, the index's subject img's manifest) and pushes it to
// img's repository. With fallback it also lists it under the referrers
// tag, for a registry without the referrers API.
func (c *Client) PushV1(img Image, opts Options, fallback bool) (*Index, error) {
	ztocs, err := BuildZtocs(img.Layers, img.Blobs, opts)
	if err != nil {
		return nil, err
	}
	idx, err := NewIndex(soci.V1, &img.Manifest, ztocs)
	if err != nil {
		return nil, err
	}
	if err := c.PushIndex(img.Repo, idx); err != nil {
		return nil, err
	}
	if fallback {
		if _, err := c.AddToReferrersTag(img.Repo, img.Manifest.Digest, idx.ReferrerDescriptor()); err != nil {
			return nil, err
		}
	}
	return idx, nil
}

// SOCIEnabled is a SOCI-enabled image (index manifest v2) as SOCI's
// soci convert makes it (soci/soci_convert.go): an OCI image index
// holding the image manifest, annotated with the SOCI index's digest, and
// the SOCI index manifest, annotated with the image manifest's digest.
type SOCIEnabled struct {
	Repo, Tag string
	// Index is the image index's descriptor, as resolving Tag gives it.
	Index      ocispec.Descriptor
	IndexBytes []byte
	// Manifest is the annotated image manifest's entry in the index.
	Manifest      ocispec.Descriptor
	ManifestBytes []byte
	// SOCIEntry is the SOCI index's entry in the image index.
	SOCIEntry ocispec.Descriptor
	SOCI      *Index
	// Image is the image converted, its manifest before the annotation.
	Image Image
}

// PushV2 converts img as soci convert does and pushes the result under
// tag: a v2 SOCI index of img's layers (no subject), then img's manifest
// rewritten with OCI media types and annotated
// com.amazon.soci.index-digest (annotateImages), then an OCI image index
// of that manifest and the SOCI index's descriptor, whose artifactType is
// v2 and whose annotation com.amazon.soci.image-manifest-digest names the
// manifest (addSociIndexes).
func (c *Client) PushV2(img Image, tag string, opts Options) (*SOCIEnabled, error) {
	ztocs, err := BuildZtocs(img.Layers, img.Blobs, opts)
	if err != nil {
		return nil, err
	}
	idx, err := NewIndex(soci.V2, nil, ztocs)
	if err != nil {
		return nil, err
	}
	if err := c.PushIndex(img.Repo, idx); err != nil {
		return nil, err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(img.ManifestBytes, &m); err != nil {
		return nil, err
	}
	m.MediaType = ocispec.MediaTypeImageManifest
	m.Config.MediaType = ocispec.MediaTypeImageConfig
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	m.Annotations[soci.ImageAnnotationSociIndexDigest] = idx.Desc.Digest.String()
	man, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	mdesc, err := c.PushManifest(img.Repo, "", ocispec.MediaTypeImageManifest, man)
	if err != nil {
		return nil, err
	}
	platform := img.Platform
	mdesc.Platform = &platform
	mdesc.Annotations = maps.Clone(m.Annotations)
	sociPlatform := img.Platform
	entry := idx.Desc
	entry.Platform = &sociPlatform
	entry.Annotations = map[string]string{soci.IndexAnnotationImageManifestDigest: mdesc.Digest.String()}
	body, err := json.Marshal(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{mdesc, entry},
	})
	if err != nil {
		return nil, err
	}
	idesc, err := c.PushManifest(img.Repo, tag, ocispec.MediaTypeImageIndex, body)
	if err != nil {
		return nil, err
	}
	return &SOCIEnabled{
		Repo: img.Repo, Tag: tag,
		Index: idesc, IndexBytes: body,
		Manifest: mdesc, ManifestBytes: man,
		SOCIEntry: entry, SOCI: idx,
		Image: img,
	}, nil
}
