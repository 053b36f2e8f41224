package fusefs

import (
	"context"
	"errors"
	"io"
	"sort"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/imgfs/imgfs/internal/layer"
)

// viewNode is a file of a file view. The top of a view (rootfs/,
// layers/<n>-<hex>/) has lazy set and finds its tree on first use; every
// other node is made by a lookup in a built tree. Hard links share one
// viewNode, as go-fuse keeps one Inode per inode number.
type viewNode struct {
	fs.Inode
	readOnly
	fsys *imageFS
	lazy *lazyTree // the top of a view only
	t    *viewTree
	node *layer.Node // a directory's entry, for its children
	in   *layer.Inode
	file viewFile // a regular file's handles (see view_passthrough.go)
}

var (
	_ = (fs.NodeGetattrer)((*viewNode)(nil))
	_ = (fs.NodeLookuper)((*viewNode)(nil))
	_ = (fs.NodeReaddirer)((*viewNode)(nil))
	_ = (fs.NodeReadlinker)((*viewNode)(nil))
	_ = (fs.NodeOpener)((*viewNode)(nil))
	_ = (fs.NodeReader)((*viewNode)(nil))
	_ = (fs.NodeGetxattrer)((*viewNode)(nil))
	_ = (fs.NodeListxattrer)((*viewNode)(nil))
	_ = (fs.NodeSetattrer)((*viewNode)(nil))
)

// resolve returns the node's tree entry, building the view for the top
// node. A view that cannot be built answers EIO; the cause is logged once
// per attempt by the build.
func (v *viewNode) resolve(ctx context.Context) (*viewTree, *layer.Node, syscall.Errno) {
	if v.lazy == nil {
		return v.t, v.node, 0
	}
	t, err := v.lazy.get(ctx)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, nil, syscall.EINTR
		}
		return nil, nil, syscall.EIO
	}
	return t, t.tree.Root(), 0
}

// Getattr reports the metadata the tar recorded. The top of a view that is
// not built yet reports a plain directory rather than fetching a layer:
// ls -l of the mount must not pull every layer.
func (v *viewNode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if v.lazy != nil {
		t := v.lazy.built()
		if t == nil {
			v.fsys.attrs.fill(&out.Attr, 0o555, 0, 2)
			return 0
		}
		fillView(&out.Attr, t.tree.Root().Inode())
		return 0
	}
	fillView(&out.Attr, v.in)
	return 0
}

// fillView sets the attributes of a tree inode: type, mode, owner, times
// and size as the tar records them. Devices keep their numbers; the mount
// is nodev, so they cannot be opened as devices.
func fillView(out *fuse.Attr, in *layer.Inode) {
	e := in.Entry
	out.Mode = typeBits(e.Type) | uint32(e.Mode)&07777
	out.Uid, out.Gid = uint32(e.UID), uint32(e.GID)
	out.Nlink = uint32(max(in.Nlink, 1))
	switch e.Type {
	case layer.TypeRegular:
		out.Size = uint64(e.Size)
	case layer.TypeSymlink:
		out.Size = uint64(len(e.Linkname))
	case layer.TypeChar, layer.TypeBlock:
		out.Rdev = uint32(unix.Mkdev(uint32(e.Devmajor), uint32(e.Devminor)))
	}
	out.Blocks = (out.Size + 511) / 512
	mt := e.ModTime()
	out.SetTimes(&mt, &mt, &mt)
}

func typeBits(t layer.Type) uint32 {
	switch t {
	case layer.TypeDir:
		return syscall.S_IFDIR
	case layer.TypeSymlink:
		return syscall.S_IFLNK
	case layer.TypeChar:
		return syscall.S_IFCHR
	case layer.TypeBlock:
		return syscall.S_IFBLK
	case layer.TypeFifo:
		return syscall.S_IFIFO
	}
	return syscall.S_IFREG
}

func (v *viewNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	t, n, errno := v.resolve(ctx)
	if errno != 0 {
		return nil, errno
	}
	c, ok := n.Child(name)
	if !ok {
		return nil, syscall.ENOENT
	}
	in := c.Inode()
	fillView(&out.Attr, in)
	out.SetEntryTimeout(viewEntryMark) // forgotten once the kernel lets go: see viewforget.go
	child := &viewNode{fsys: v.fsys, t: t, node: c, in: in}
	return v.NewInode(ctx, child, fs.StableAttr{Mode: typeBits(in.Entry.Type), Ino: t.ino(in)}), 0
}

func (v *viewNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	t, n, errno := v.resolve(ctx)
	if errno != 0 {
		return nil, errno
	}
	kids := n.Children()
	list := make([]fuse.DirEntry, 0, len(kids))
	for _, c := range kids {
		in := c.Inode()
		list = append(list, fuse.DirEntry{Name: c.Name(), Mode: typeBits(in.Entry.Type), Ino: t.ino(in)})
	}
	return fs.NewListDirStream(list), 0
}

func (v *viewNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	if v.in == nil || v.in.Entry.Type != layer.TypeSymlink {
		return nil, syscall.EINVAL
	}
	return []byte(v.in.Entry.Linkname), 0
}

// Open refuses a file the view marked bad (a hard link to a missing
// target, say) with EIO; the build logged why.
func (v *viewNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if writable(flags) {
		return nil, 0, syscall.EROFS
	}
	if v.in != nil && v.in.Bad != "" {
		v.fsys.log.Warn("open of a bad entry refused", "view", v.t.name, "layer", layerName(v.t.descs, int(v.in.Layer)), "entry", v.in.Entry.Name, "reason", v.in.Bad)
		return nil, 0, syscall.EIO
	}
	v.fsys.stats.opens.Add(1)
	if v.in == nil || v.in.Entry.Type != layer.TypeRegular {
		return nil, fuse.FOPEN_KEEP_CACHE, 0
	}
	return v.openFile()
}

// Read serves file bytes from the layer that holds them. Bytes that fail
// verification are never returned: the read fails with EIO and a log line
// naming the layer and the entry.
func (v *viewNode) Read(ctx context.Context, f fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if h, ok := f.(fs.FileReader); ok { // go-fuse asks the node first
		return h.Read(ctx, dest, off)
	}
	n, errno := v.readFile(ctx, dest, off)
	if errno != 0 {
		return nil, errno
	}
	return fuse.ReadResultData(dest[:n]), 0
}

// readFile reads into dest from off, returning how much it read: all of
// dest, or less at the end of the file.
func (v *viewNode) readFile(ctx context.Context, dest []byte, off int64) (int, syscall.Errno) {
	in := v.in
	if in == nil || in.Entry.Type != layer.TypeRegular || in.Bad != "" {
		return 0, syscall.EIO
	}
	v.fsys.stats.reads.Add(1)
	n, err := v.t.layers[in.Layer].ReadFile(ctx, int(in.Index), dest, off)
	if err != nil && err != io.EOF {
		v.fsys.stats.readErrors.Add(1)
		v.fsys.log.Error("read failed", "view", v.t.name, "layer", layerName(v.t.descs, int(in.Layer)), "entry", in.Entry.Name, "offset", off, "err", err)
		return 0, syscall.EIO
	}
	v.fsys.stats.readBytes.Add(uint64(n))
	return n, 0
}

func (v *viewNode) xattrs() map[string]string {
	if v.in != nil {
		return v.in.Entry.Xattrs
	}
	if t := v.lazy.built(); t != nil {
		return t.tree.Root().Inode().Entry.Xattrs
	}
	return nil
}

func (v *viewNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	val, ok := v.xattrs()[attr]
	if !ok {
		return 0, syscall.ENODATA
	}
	if len(dest) < len(val) {
		return uint32(len(val)), syscall.ERANGE
	}
	return uint32(copy(dest, val)), 0
}

func (v *viewNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	xs := v.xattrs()
	names := make([]string, 0, len(xs))
	size := 0
	for k := range xs {
		names = append(names, k)
		size += len(k) + 1
	}
	if len(dest) < size {
		return uint32(size), syscall.ERANGE
	}
	sort.Strings(names)
	n := 0
	for _, k := range names {
		n += copy(dest[n:], k)
		dest[n] = 0
		n++
	}
	return uint32(n), 0
}
