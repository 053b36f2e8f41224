package fusefs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// blobFile is blobs/<alg>/<hex>: it knows its descriptor and reads through
// Blobs only when opened. Stat never touches Blobs: the size is the
// descriptor's.
//
// An open is served one of two ways. A passthrough handle holds the
// complete blob file from the cache, which the kernel reads directly; a
// reader handle reads through a BlobReader. The kernel fixes the mode per
// inode while any handle is open and fails an open in the other mode with
// EIO, so the counts in handleModes make sure the two never overlap.
type blobFile struct {
	fs.Inode
	readOnly
	fsys        *imageFS
	desc        ocispec.Descriptor
	handleModes // backing is the complete blob
}

var (
	_ = (fs.NodeGetattrer)((*blobFile)(nil))
	_ = (fs.NodeSetattrer)((*blobFile)(nil))
	_ = (fs.NodeOpener)((*blobFile)(nil))
)

func (b *blobFile) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	b.fsys.attrs.fill(&out.Attr, 0o444, uint64(b.desc.Size), 1)
	return 0
}

// Open returns FOPEN_KEEP_CACHE because a blob's content never changes.
// Pages of bytes that later fail verification are dropped by
// Server.InvalidateBlob.
func (b *blobFile) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if writable(flags) {
		return nil, 0, syscall.EROFS
	}
	b.fsys.stats.opens.Add(1)

	b.mu.Lock()
	if b.choosePassthrough() {
		b.through++
		h := &passthroughHandle{passthroughFile: passthroughFile{modes: &b.handleModes, file: b.backing}, blob: b}
		b.mu.Unlock()
		return h, fuse.FOPEN_KEEP_CACHE, 0
	}
	b.readers++
	b.mu.Unlock()

	r, err := b.fsys.blobs.Open(b.desc)
	if err != nil {
		b.releaseReader()
		b.fsys.log.Error("open blob", "digest", b.desc.Digest, "err", err)
		return nil, 0, syscall.EIO
	}
	lr, _ := r.(LendingReader)
	return &readerHandle{blob: b, r: r, lender: lr}, fuse.FOPEN_KEEP_CACHE, 0
}

// choosePassthrough decides the mode of a new handle; b.mu is held, so the
// decision and the count change together. Once a passthrough handle is
// open the inode stays in passthrough mode; a new one is started only when
// no reader handle is open and the cache holds the complete blob. Opening
// that local file under the lock is quick.
func (b *blobFile) choosePassthrough() bool {
	if !b.fsys.passthrough || b.readers > 0 {
		return false
	}
	if b.through > 0 {
		return true
	}
	path, ok := b.fsys.blobs.CompletePath(b.desc)
	if !ok {
		return false
	}
	f, err := os.Open(path)
	if err == nil {
		err = checkSize(f, b.desc.Size)
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		b.fsys.log.Warn("complete blob unusable, reading through the cache instead", "digest", b.desc.Digest, "err", err)
		return false
	}
	b.backing = f
	return true
}

// checkSize guards passthrough against a file of the wrong size: the kernel
// would serve its end of file as the blob's.
func checkSize(f *os.File, want int64) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != want {
		return fmt.Errorf("%s has %d bytes, want %d", f.Name(), fi.Size(), want)
	}
	return nil
}

// releaseReader forgets one reader handle.
func (b *blobFile) releaseReader() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.readers--
}

// read serves one FUSE READ from readAt. The range is clipped to the blob
// size; anything short of the whole range is an error, because the kernel
// takes a short read as end of file and would shrink the file.
func (b *blobFile) read(ctx context.Context, dest []byte, off int64, readAt func([]byte, int64) (int, error)) (fuse.ReadResult, syscall.Errno) {
	if off >= b.desc.Size {
		return fuse.ReadResultData(nil), 0
	}
	p := dest[:min(int64(len(dest)), b.desc.Size-off)]
	n, err := readAt(p, off)
	st := &b.fsys.stats
	st.reads.Add(1)
	if n == len(p) {
		st.readBytes.Add(uint64(n))
		return fuse.ReadResultData(p), 0
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	if ctx.Err() != nil {
		// Interrupted: the kernel discards the reply anyway.
		return nil, syscall.EINTR
	}
	st.readErrors.Add(1)
	b.fsys.log.Error("read blob", "digest", b.desc.Digest, "offset", off, "length", len(p), "err", err)
	return nil, syscall.EIO
}

// readerHandle reads a blob through the cache.
type readerHandle struct {
	blob   *blobFile
	r      BlobReader
	lender LendingReader // r, if it lends; nil otherwise
}

var (
	_ = (fs.FileReader)((*readerHandle)(nil))
	_ = (fs.FileReleaser)((*readerHandle)(nil))
)

func (h *readerHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if h.lender == nil {
		return h.blob.read(ctx, dest, off, func(p []byte, off int64) (int, error) {
			return h.r.ReadAt(ctx, p, off)
		})
	}
	var lent [][]byte
	var giveBack func()
	res, errno := h.blob.read(ctx, dest, off, func(p []byte, off int64) (int, error) {
		var n int
		var err error
		lent, giveBack, n, err = h.lender.ReadLend(ctx, p, off)
		return n, err
	})
	if giveBack == nil {
		return res, errno
	}
	if errno != 0 {
		giveBack()
		return res, errno
	}
	return &lentResult{slices: lent, size: res.Size(), giveBack: giveBack}, 0
}

func (h *readerHandle) Release(ctx context.Context) syscall.Errno {
	h.blob.releaseReader()
	if err := h.r.Close(); err != nil {
		h.blob.fsys.log.Warn("close blob reader", "digest", h.blob.desc.Digest, "err", err)
	}
	return 0
}

// passthroughHandle offers the complete blob file for FUSE passthrough.
// If go-fuse or the kernel declines, the kernel sends READs instead, which
// Read serves from the same file.
type passthroughHandle struct {
	passthroughFile
	blob *blobFile
}

var (
	_ = (fs.FilePassthroughFder)((*passthroughHandle)(nil))
	_ = (fs.FileReader)((*passthroughHandle)(nil))
	_ = (fs.FileReleaser)((*passthroughHandle)(nil))
)

func (h *passthroughHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.declined(h.blob.fsys, h.blob.desc)
	return h.blob.read(ctx, dest, off, h.file.ReadAt)
}

// handleModes counts an inode's open handles of each mode, for blob files
// and view files alike. The kernel fixes the mode per inode while any
// handle is open, so the owner opens a passthrough handle only when no
// reader handle is open, and the reverse.
type handleModes struct {
	mu      sync.Mutex
	readers int      // open reader handles
	through int      // open passthrough handles
	backing *os.File // the file passed through while through > 0
}

// releaseThrough forgets one passthrough handle, closing the backing file
// with the last. The kernel holds its own reference to a registered
// backing file, so closing ours is safe.
func (m *handleModes) releaseThrough() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.through--
	if m.through == 0 {
		m.backing.Close()
		m.backing = nil
	}
}

// passthroughFile is what the passthrough handles of blob and view files
// share: the backing file offered to the kernel, and its release.
type passthroughFile struct {
	modes    *handleModes
	file     *os.File
	fellBack atomic.Bool
}

func (p *passthroughFile) PassthroughFd() (int, bool) {
	return int(p.file.Fd()), true
}

// declined records, on the handle's first READ only, that the kernel
// reads it through FUSE after all.
func (p *passthroughFile) declined(fsys *imageFS, d ocispec.Descriptor) {
	if !p.fellBack.Swap(true) {
		fsys.passthroughDeclined(d)
	}
}

func (p *passthroughFile) Release(ctx context.Context) syscall.Errno {
	p.modes.releaseThrough()
	return 0
}
