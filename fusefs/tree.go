package fusefs

import (
	"context"
	"hash/fnv"
	"log/slog"
	"path"
	"strings"
	"sync"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/oci"
)

// Names of the friendly views. The root index is index-manifest.json, not
// index.json, which is the layout's own index.
const (
	statsPath     = ".imgfs/stats.json"
	rootIndexName = "index-manifest.json"
)

// imageFS is what every node of one mount shares.
type imageFS struct {
	img         Image
	index       []byte // index.json
	blobs       Blobs
	log         *slog.Logger
	passthrough bool
	extraStats  func() any
	attrs       attrs
	stats       counters
	declined    sync.Once

	// files finds a blob's node by digest. OnAdd fills it while the mount
	// is made; it is only read after that.
	files map[digest.Digest]*blobFile

	// views counts the file views made, to give each its inode range.
	views int
}

// passthroughDeclined records that a passthrough handle got READs: go-fuse
// or the kernel refused the backing file. One failure turns passthrough off
// for the whole mount in go-fuse, so one log line is enough.
func (f *imageFS) passthroughDeclined(d ocispec.Descriptor) {
	f.stats.passthroughFallbacks.Add(1)
	f.declined.Do(func() {
		f.log.Warn("passthrough declined by go-fuse or the kernel; serving complete blobs with FUSE reads", "digest", d.Digest)
	})
}

// root is the mount's root directory. Like the go-fuse zipfs example, it
// builds the whole tree once, in OnAdd, from persistent inodes.
type root struct {
	dir
	fsys *imageFS
}

var _ = (fs.NodeOnAdder)((*root)(nil))

func (r *root) OnAdd(ctx context.Context) {
	b := &builder{
		ctx:  ctx,
		fsys: r.fsys,
		dirs: map[string]*fs.Inode{".": &r.Inode},
		inos: map[uint64]bool{},
	}
	img := r.fsys.img
	r.fsys.files = map[digest.Digest]*blobFile{}

	b.add("oci-layout", &memFile{attrs: &r.fsys.attrs, data: []byte(ociLayout)}, 0)
	b.add("index.json", &memFile{attrs: &r.fsys.attrs, data: r.fsys.index}, 0)

	all := append([]ocispec.Descriptor{img.Root}, img.Blobs...)
	for _, p := range img.Platforms {
		all = append(append(all, p.Manifest, p.Config), p.Layers...)
	}
	for _, d := range all {
		if r.fsys.files[d.Digest] != nil {
			continue
		}
		f := &blobFile{fsys: r.fsys, desc: d}
		r.fsys.files[d.Digest] = f
		b.add(blobPath(d.Digest), f, 0)
	}

	b.views(".", img.Platforms[0])
	if oci.IsIndex(img.Root.MediaType) {
		b.link(rootIndexName, img.Root)
	}
	if len(img.Platforms) > 1 {
		for i, name := range platformDirs(img.Platforms) {
			b.views(path.Join("platforms", name), img.Platforms[i])
		}
	}

	b.add(statsPath, &statsFile{fsys: r.fsys}, 0)
}

// builder adds nodes by path, making parent directories as needed.
type builder struct {
	ctx  context.Context
	fsys *imageFS
	dirs map[string]*fs.Inode
	inos map[uint64]bool
}

// views adds manifest.json, config.json and layers/ for one platform under
// dir.
func (b *builder) views(dir string, p PlatformImage) {
	b.link(path.Join(dir, "manifest.json"), p.Manifest)
	b.link(path.Join(dir, "config.json"), p.Config)
	for i, name := range layerNames(p.Layers) {
		b.link(path.Join(dir, "layers", name), p.Layers[i])
	}
	b.fileViews(dir, p)
}

// link adds a relative symlink at p to the blob of d.
func (b *builder) link(p string, d ocispec.Descriptor) {
	up := strings.Repeat("../", strings.Count(p, "/"))
	b.add(p, &symlink{attrs: &b.fsys.attrs, target: up + blobPath(d.Digest)}, fuse.S_IFLNK)
}

// add puts node at p, with an inode number derived from the path.
func (b *builder) add(p string, node fs.InodeEmbedder, mode uint32) *fs.Inode {
	parent := b.dir(path.Dir(p))
	ch := parent.NewPersistentInode(b.ctx, node, fs.StableAttr{Mode: mode, Ino: b.ino(p)})
	parent.AddChild(path.Base(p), ch, false)
	return ch
}

// dir returns the directory at p, adding it and its parents if needed.
func (b *builder) dir(p string) *fs.Inode {
	if d, ok := b.dirs[p]; ok {
		return d
	}
	d := b.add(p, &dir{attrs: &b.fsys.attrs}, fuse.S_IFDIR)
	b.dirs[p] = d
	return d
}

// ino derives a stable inode number from a path: the same image gives the
// same numbers on every mount. 0, 1 (the root) and ^0 are reserved, and
// go-fuse would take a repeated number for a hard link, so a collision
// moves to the next free number; the tree is built in a fixed order, so
// that too is deterministic.
func (b *builder) ino(p string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(p))
	n := h.Sum64()
	for n <= 1 || n == ^uint64(0) || b.inos[n] {
		n++
	}
	b.inos[n] = true
	return n
}

// blobPath is the layout path of a blob: blobs/<algorithm>/<encoded>.
func blobPath(d digest.Digest) string {
	alg, enc, _ := strings.Cut(string(d), ":")
	return path.Join("blobs", alg, enc)
}
