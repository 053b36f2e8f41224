package fusefs

import (
	"context"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// attrs holds what every node reports alike: the owner is the mounting
// user and every time is the image's creation time, so stat output is the
// same on every mount of the same image.
type attrs struct {
	uid, gid uint32
	time     time.Time
}

// fill sets the attributes of a node. go-fuse adds the file type and the
// inode number from the node's StableAttr.
func (a *attrs) fill(out *fuse.Attr, perm uint32, size uint64, nlink uint32) {
	out.Mode = perm
	out.Size = size
	out.Nlink = nlink
	out.Uid = a.uid
	out.Gid = a.gid
	out.SetTimes(&a.time, &a.time, &a.time)
}

// readOnly answers every modifying operation with EROFS. The mount is
// read-only already, so the kernel normally refuses first; this covers the
// cases where go-fuse would otherwise answer ENOTSUP or, for unlink and
// rmdir, succeed.
type readOnly struct{}

func (readOnly) Setattr(context.Context, fs.FileHandle, *fuse.SetAttrIn, *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}

func (readOnly) Create(context.Context, string, uint32, uint32, *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EROFS
}

func (readOnly) Mkdir(context.Context, string, uint32, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (readOnly) Mknod(context.Context, string, uint32, uint32, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (readOnly) Link(context.Context, fs.InodeEmbedder, string, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (readOnly) Symlink(context.Context, string, string, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (readOnly) Unlink(context.Context, string) syscall.Errno { return syscall.EROFS }

func (readOnly) Rmdir(context.Context, string) syscall.Errno { return syscall.EROFS }

func (readOnly) Rename(context.Context, string, fs.InodeEmbedder, string, uint32) syscall.Errno {
	return syscall.EROFS
}

// writable reports whether open flags ask for anything but reading.
func writable(flags uint32) bool {
	return flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0
}

// dir is a directory of the tree. Its children are added once, at mount.
type dir struct {
	fs.Inode
	readOnly
	attrs *attrs
}

var (
	_ = (fs.NodeGetattrer)((*dir)(nil))
	_ = (fs.NodeSetattrer)((*dir)(nil))
	_ = (fs.NodeCreater)((*dir)(nil))
	_ = (fs.NodeMkdirer)((*dir)(nil))
	_ = (fs.NodeMknoder)((*dir)(nil))
	_ = (fs.NodeLinker)((*dir)(nil))
	_ = (fs.NodeSymlinker)((*dir)(nil))
	_ = (fs.NodeUnlinker)((*dir)(nil))
	_ = (fs.NodeRmdirer)((*dir)(nil))
	_ = (fs.NodeRenamer)((*dir)(nil))
)

// Getattr counts subdirectories in the link count, as tools like find
// expect.
func (d *dir) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	nlink := uint32(2)
	for _, ch := range d.Children() {
		if ch.IsDir() {
			nlink++
		}
	}
	d.attrs.fill(&out.Attr, 0o555, 0, nlink)
	return 0
}

// memFile is a small immutable file held in memory: oci-layout and
// index.json.
type memFile struct {
	fs.Inode
	readOnly
	attrs *attrs
	data  []byte
}

var (
	_ = (fs.NodeGetattrer)((*memFile)(nil))
	_ = (fs.NodeSetattrer)((*memFile)(nil))
	_ = (fs.NodeOpener)((*memFile)(nil))
	_ = (fs.NodeReader)((*memFile)(nil))
)

func (m *memFile) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	m.attrs.fill(&out.Attr, 0o444, uint64(len(m.data)), 1)
	return 0
}

// Open returns FOPEN_KEEP_CACHE because the content never changes.
func (m *memFile) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if writable(flags) {
		return nil, 0, syscall.EROFS
	}
	return nil, fuse.FOPEN_KEEP_CACHE, 0
}

func (m *memFile) Read(ctx context.Context, f fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return fuse.ReadResultData(window(m.data, dest, off)), 0
}

// window returns the part of data at off that fits in dest.
func window(data, dest []byte, off int64) []byte {
	if off >= int64(len(data)) {
		return nil
	}
	return data[off:min(off+int64(len(dest)), int64(len(data)))]
}

// symlink is a friendly name: a relative link into blobs/, so it resolves
// wherever the mount is and also in a copy of the tree.
type symlink struct {
	fs.Inode
	readOnly
	attrs  *attrs
	target string
}

var (
	_ = (fs.NodeGetattrer)((*symlink)(nil))
	_ = (fs.NodeSetattrer)((*symlink)(nil))
	_ = (fs.NodeReadlinker)((*symlink)(nil))
)

func (s *symlink) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	s.attrs.fill(&out.Attr, 0o777, uint64(len(s.target)), 1)
	return 0
}

func (s *symlink) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	return []byte(s.target), 0
}
