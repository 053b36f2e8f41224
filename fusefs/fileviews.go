package fusefs

import (
	"path"
	"strings"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/imgfs/imgfs/internal/oci"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fileViews adds, under dir, rootfs/ (the merged root filesystem of p) and
// layers/<n>-<hex>/ (each layer's own tree) when the mount has LayerFiles.
// Only tar layers get a tree; rootfs/ needs every layer to be one.
func (b *builder) fileViews(dir string, p PlatformImage) {
	if b.fsys.img.Files == nil {
		return
	}
	allTar := len(p.Layers) > 0
	for i, name := range layerNames(p.Layers) {
		d := p.Layers[i]
		ext := oci.LayerExt(d.MediaType)
		if !oci.IsTarLayer(d.MediaType) {
			allTar = false
			continue
		}
		b.view(path.Join(dir, "layers", strings.TrimSuffix(name, ext)), []ocispec.Descriptor{d}, false)
	}
	if allTar {
		b.view(path.Join(dir, "rootfs"), p.Layers, true)
	}
}

// view adds the top of one file view at p.
func (b *builder) view(p string, descs []ocispec.Descriptor, merged bool) {
	lt := &lazyTree{fsys: b.fsys, name: p, descs: descs, merged: merged, base: viewBase(b.fsys.views)}
	b.fsys.views++
	b.add(p, &viewNode{fsys: b.fsys, lazy: lt}, fuse.S_IFDIR)
}
