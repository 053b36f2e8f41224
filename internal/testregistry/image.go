package testregistry

import (
	"encoding/json"
	"fmt"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DefaultCreated is the creation time written into configs when
// Image.Created is zero. It is fixed so that config and manifest digests do
// not change from run to run.
var DefaultCreated = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Image describes a single-platform image to build and push.
//
// Platform defaults to linux/amd64 when its OS is empty. Docker selects the
// Docker schema2 media types for the manifest, config and layers instead of
// the OCI ones; the config bytes are the same in both flavours. Annotations
// go into the manifest. Config is the runtime part of the image config (Env,
// Cmd, ...); rootfs, history, platform and created are filled in by the
// harness.
type Image struct {
	Layers      []Layer
	Platform    ocispec.Platform
	Created     time.Time
	Docker      bool
	Annotations map[string]string
	Config      ocispec.ImageConfig
}

// platform returns the image's platform with the default applied.
func (img Image) platform() ocispec.Platform {
	if img.Platform.OS == "" {
		return ocispec.Platform{OS: "linux", Architecture: "amd64"}
	}
	return img.Platform
}

func (img Image) created() time.Time {
	if img.Created.IsZero() {
		return DefaultCreated
	}
	return img.Created.UTC()
}

func (img Image) manifestMediaType() string {
	if img.Docker {
		return MediaTypeDockerManifest
	}
	return ocispec.MediaTypeImageManifest
}

func (img Image) configMediaType() string {
	if img.Docker {
		return MediaTypeDockerConfig
	}
	return ocispec.MediaTypeImageConfig
}

// configJSON returns the image config for the given diff_ids, one per layer.
func (img Image) configJSON(diffIDs []digest.Digest) ([]byte, error) {
	if len(diffIDs) != len(img.Layers) {
		return nil, fmt.Errorf("config: %d diff_ids for %d layers", len(diffIDs), len(img.Layers))
	}
	created := img.created()
	history := make([]ocispec.History, len(img.Layers))
	for i, l := range img.Layers {
		by := l.CreatedBy
		if by == "" {
			by = fmt.Sprintf("testregistry layer %d", i)
		}
		history[i] = ocispec.History{Created: &created, CreatedBy: by}
	}
	cfg := ocispec.Image{
		Created:  &created,
		Platform: img.platform(),
		Config:   img.Config,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
		History:  history,
	}
	if cfg.RootFS.DiffIDs == nil {
		// "diff_ids": null is not a valid config; an image without layers
		// still needs the empty array.
		cfg.RootFS.DiffIDs = []digest.Digest{}
	}
	return json.Marshal(cfg)
}

// manifestJSON returns the manifest referencing config and layers. OCI and
// Docker schema2 manifests have the same shape; only the media types differ.
func (img Image) manifestJSON(config ocispec.Descriptor, layers []ocispec.Descriptor) ([]byte, error) {
	if layers == nil {
		layers = []ocispec.Descriptor{}
	}
	return json.Marshal(ocispec.Manifest{
		Versioned:   specs.Versioned{SchemaVersion: 2},
		MediaType:   img.manifestMediaType(),
		Config:      config,
		Layers:      layers,
		Annotations: img.Annotations,
	})
}
