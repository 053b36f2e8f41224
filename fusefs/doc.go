// Package fusefs serves one image as a read-only FUSE filesystem laid out as
// an OCI image layout, plus friendly views for people:
//
//	oci-layout, index.json      the layout (see layoutIndex for the names)
//	blobs/sha256/<hex>          every blob, read lazily through Blobs
//	manifest.json, config.json  links into blobs/ for the default platform
//	layers/<n>-<hex12>.<ext>    its layers, in order
//	layers/<n>-<hex12>/         each tar layer's own tree, with LayerFiles
//	rootfs/                     the layers merged, whiteouts applied, with LayerFiles
//	index-manifest.json         the root index, when the image has one
//	platforms/<os>-<arch>/...   the same views per platform, when there are several
//	.imgfs/stats.json           counters, made on each open
//
// It owns the tree, the nodes, their attributes, the FUSE options and the
// mount point checks. It knows nothing of HTTP, registries or the cache:
// blob bytes come through the Blobs interface and the files inside layers
// through LayerFiles, which internal/imagemount wires to the cache. Of
// layer formats it knows only internal/layer's index model.
package fusefs
