package testregistry

import (
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Sizes of the ThreeLayerImage files, exported so tests can assert on byte
// counts without re-deriving them.
const (
	// SmallSize is the size of data/small.bin in layer 0.
	SmallSize = 1 << 10
	// MediumSize is the size of data/medium.bin in layer 1.
	MediumSize = 1 << 20
	// LargeSize is the size of data/large.bin in layer 2.
	LargeSize = 32 << 20
)

// ThreeLayerImage returns the standard fixture: three layers holding one
// random file each, data/small.bin (1 KiB, tar+gzip, plus a small text file),
// data/medium.bin (1 MiB, tar+gzip) and data/large.bin (32 MiB, uncompressed
// tar, so that range reads into the blob land on known file bytes). Seeds are
// fixed, so its layer, config and manifest digests are the same on every run;
// the two flavours share layer blobs and config bytes and differ only in
// media types.
func ThreeLayerImage(docker bool) Image {
	return Image{
		Docker: docker,
		Config: ocispec.ImageConfig{
			Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Cmd: []string{"/bin/sh"},
		},
		Layers: []Layer{
			{
				Compression: Gzip,
				CreatedBy:   "COPY small.bin /data/",
				Files: []File{
					BytesFile("etc/imgfs-fixture", []byte("three-layer fixture\n")),
					RandomFile("data/small.bin", 1, SmallSize),
				},
			},
			{
				Compression: Gzip,
				CreatedBy:   "COPY medium.bin /data/",
				Files:       []File{RandomFile("data/medium.bin", 2, MediumSize)},
			},
			{
				Compression: Uncompressed,
				CreatedBy:   "COPY large.bin /data/",
				Files:       []File{RandomFile("data/large.bin", 3, LargeSize)},
			},
		},
	}
}

// Platforms of the MultiPlatformImages fixture, in index order.
var (
	// PlatformAMD64 is linux/amd64, the first image of the index.
	PlatformAMD64 = ocispec.Platform{OS: "linux", Architecture: "amd64"}
	// PlatformARM64 is linux/arm64/v8, the second image of the index.
	PlatformARM64 = ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
)

// MultiPlatformImages returns the per-platform images of the multi-platform
// fixture, linux/amd64 then linux/arm64/v8. Both share a first layer
// (data/common.bin, 64 KiB), as images built from one base do; the second
// layer differs per platform (etc/platform naming the platform, and a
// 256 KiB data/arch.bin from a per-platform seed).
func MultiPlatformImages(docker bool) []Image {
	common := Layer{
		Compression: Gzip,
		CreatedBy:   "FROM base",
		Files:       []File{RandomFile("data/common.bin", 100, 64<<10)},
	}
	var imgs []Image
	for i, p := range []ocispec.Platform{PlatformAMD64, PlatformARM64} {
		name := p.OS + "/" + p.Architecture
		if p.Variant != "" {
			name += "/" + p.Variant
		}
		imgs = append(imgs, Image{
			Docker:   docker,
			Platform: p,
			Layers: []Layer{common, {
				Compression: Gzip,
				CreatedBy:   "COPY arch.bin /data/",
				Files: []File{
					BytesFile("etc/platform", []byte(name+"\n")),
					RandomFile("data/arch.bin", int64(101+i), 256<<10),
				},
			}},
		})
	}
	return imgs
}

// MultiPlatform is the pushed multi-platform fixture: the index, the two
// platform images in index order, and the attestation entry (for the amd64
// image) that comes last in the index.
type MultiPlatform struct {
	Index       PushedIndex
	Images      []Pushed
	Attestation IndexEntry
}

// PushMultiPlatform pushes MultiPlatformImages(docker) by digest and an
// index of them plus a buildx-style attestation manifest for the amd64
// image, tagged tag (by digest only when tag is ""). With docker set the
// index is a Docker manifest list; the attestation manifest stays OCI, as it
// is the one BuildKit writes.
func (r *Registry) PushMultiPlatform(repo, tag string, docker bool) (MultiPlatform, error) {
	var m MultiPlatform
	var entries []IndexEntry
	for _, img := range MultiPlatformImages(docker) {
		p, err := r.PushImage(repo, "", img)
		if err != nil {
			return m, fmt.Errorf("multi-platform fixture: %w", err)
		}
		m.Images = append(m.Images, p)
		entries = append(entries, p.Entry())
	}
	att, err := r.PushAttestation(repo, m.Images[0].Manifest.Digest)
	if err != nil {
		return m, fmt.Errorf("multi-platform fixture: %w", err)
	}
	m.Attestation = att
	m.Index, err = r.PushIndex(repo, tag, docker, append(entries, att)...)
	if err != nil {
		return m, fmt.Errorf("multi-platform fixture: %w", err)
	}
	return m, nil
}
