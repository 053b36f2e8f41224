package fusefs

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/imgfs/imgfs/internal/byterange"
	"github.com/imgfs/imgfs/internal/layer"
)

// minCopySize is the smallest file the views copy for passthrough. Smaller
// files gain little from it, and each copy costs an inode and an fsync.
const minCopySize = 1 << 20

// viewFile is the open state of a regular file of a view. Its first reads
// go through Read, and when FileCopies is set they are also written to a
// copy; once every byte has been read the copy is committed, and later
// opens are served by FUSE passthrough from it, as complete blobs are. As
// for blobs (see blobFile), the kernel fixes the mode per inode while any
// handle is open, so a passthrough handle is opened only when no plain
// one is.
type viewFile struct {
	handleModes // backing is the copy
	// rec is the copy being recorded. It changes under mu; Read loads it
	// without the lock.
	rec atomic.Pointer[copyRecorder]
	// stale: a copy was given up while pages of the file may be in the
	// kernel's page cache, which the next copy's reads would then skip.
	stale bool
}

// openFile opens a regular file of a view in passthrough mode if it has a
// copy and no plain handle is open, else as a plain handle that may record
// a copy.
func (v *viewNode) openFile() (fs.FileHandle, uint32, syscall.Errno) {
	copies, _ := v.fsys.img.Files.(FileCopies)
	st := &v.file
	st.mu.Lock()
	defer st.mu.Unlock()
	desc, size := v.t.descs[v.in.Layer], v.in.Entry.Size
	if copies != nil && v.fsys.passthrough && st.readers == 0 {
		if st.through == 0 {
			if f, ok := copies.OpenCopy(desc, int(v.in.Index), size); ok {
				st.backing = f
			}
		}
		if st.backing != nil {
			st.through++
			return &viewPassthroughHandle{passthroughFile: passthroughFile{modes: &st.handleModes, file: st.backing}, v: v}, fuse.FOPEN_KEEP_CACHE, 0
		}
	}
	st.readers++
	flags := uint32(fuse.FOPEN_KEEP_CACHE)
	if u, ok := v.t.layers[v.in.Layer].(layer.Unsettled); ok && u.Unsettled() {
		flags = 0 // the kernel drops the file's pages at each open
	}
	if copies != nil && v.fsys.passthrough && st.rec.Load() == nil && st.through == 0 && size >= minCopySize {
		if c := copies.NewCopy(desc, int(v.in.Index), size); c != nil {
			st.rec.Store(&copyRecorder{c: c, size: size})
			if st.stale {
				flags = 0 // drop the cached pages, so that the copy sees every byte
				st.stale = false
			}
		}
	}
	return &viewReadHandle{v: v}, flags, 0
}

// viewReadHandle reads a view file through its layer.
type viewReadHandle struct{ v *viewNode }

var (
	_ = (fs.FileReader)((*viewReadHandle)(nil))
	_ = (fs.FileReleaser)((*viewReadHandle)(nil))
)

func (h *viewReadHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n, errno := h.v.readFile(ctx, dest, off)
	if errno != 0 {
		return nil, errno
	}
	if rec := h.v.file.rec.Load(); rec != nil && rec.record(dest[:n], off) {
		go h.v.commitCopy(rec)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

// Release gives up an unfinished copy with the last plain handle.
func (h *viewReadHandle) Release(ctx context.Context) syscall.Errno {
	st := &h.v.file
	st.mu.Lock()
	defer st.mu.Unlock()
	st.readers--
	if rec := st.rec.Load(); st.readers == 0 && rec != nil && rec.abandon() {
		st.rec.Store(nil)
		st.stale = true
	}
	return 0
}

// commitCopy commits a copy whose every byte was recorded; it is synced,
// so off the READ that completed it.
func (v *viewNode) commitCopy(rec *copyRecorder) {
	err := rec.c.Commit()
	st := &v.file
	st.mu.Lock()
	st.rec.CompareAndSwap(rec, nil)
	st.mu.Unlock()
	if err != nil {
		v.fsys.log.Warn("file copy for passthrough not kept", "view", v.t.name, "entry", v.in.Entry.Name, "err", err)
		return
	}
	v.fsys.log.Debug("file copied for passthrough", "view", v.t.name, "entry", v.in.Entry.Name, "size", v.in.Entry.Size)
}

// copyRecorder writes the bytes of a file's reads to its copy and tracks
// which ranges it holds. Reads arrive in any order (readahead runs in
// parallel), so the ranges are merged as they come.
type copyRecorder struct {
	c    FileCopy
	size int64

	mu     sync.Mutex
	have   byterange.Set
	done   bool // committing, or abandoned
	failed atomic.Bool
}

// record writes p, read at off, to the copy, and reports whether this made
// the copy whole: the caller then commits it.
func (r *copyRecorder) record(p []byte, off int64) bool {
	if len(p) == 0 || r.failed.Load() {
		return false
	}
	if _, err := r.c.WriteAt(p, off); err != nil {
		r.failed.Store(true)
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return false
	}
	r.have.Add(byterange.Range{Start: off, End: off + int64(len(p))})
	if r.have.PrefixEnd() == r.size {
		r.done = true
		return true
	}
	return false
}

// abandon drops the copy unless it is being committed, and reports
// whether it did.
func (r *copyRecorder) abandon() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return false
	}
	r.done = true
	r.c.Abort()
	return true
}

// viewPassthroughHandle offers a view file's copy for FUSE passthrough. If
// go-fuse or the kernel declines, the kernel sends READs, served from the
// same file.
type viewPassthroughHandle struct {
	passthroughFile
	v *viewNode
}

var (
	_ = (fs.FilePassthroughFder)((*viewPassthroughHandle)(nil))
	_ = (fs.FileReader)((*viewPassthroughHandle)(nil))
	_ = (fs.FileReleaser)((*viewPassthroughHandle)(nil))
)

func (h *viewPassthroughHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.declined(h.v.fsys, h.v.t.descs[h.v.in.Layer])
	n, err := h.file.ReadAt(dest, off)
	if n < len(dest) && off+int64(n) < h.v.in.Entry.Size {
		h.v.fsys.log.Error("read file copy", "view", h.v.t.name, "entry", h.v.in.Entry.Name, "offset", off, "err", err)
		return nil, syscall.EIO
	}
	return fuse.ReadResultData(dest[:n]), 0
}
