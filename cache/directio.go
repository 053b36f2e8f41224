package cache

import (
	"errors"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/imgfs/imgfs/internal/byterange"
)

// Fetched chunks are written with O_DIRECT where the filesystem takes it.
// A landed chunk is already in a buffer of ours, which the hasher and the
// reads waiting on it take it from (heldbufs.go), so a second copy in the
// page cache would only double the memory a cold read fills (the FUSE
// file's own pages already hold what the reader read) and, for a fill,
// load the page cache with a whole image that nobody is reading. On VMs
// that hand free memory back to the host, every fresh page costs a host
// fault, so writing through the page cache can cost many times the CPU of
// writing with O_DIRECT. A fill's parallel O_DIRECT writes do not
// serialise here, whether the file is extended, preallocated or sparse.
// See Performance in README.md for both.
//
// Where O_DIRECT is refused (some FUSE and network filesystems), or for
// a write that is not block-aligned (a blob's last chunk), the write goes
// through the page cache.

// directAlign is the alignment O_DIRECT needs of offsets, lengths and
// buffers: a page, which covers every logical block size in use.
const directAlign = 4096

// openDirect opens path for O_DIRECT writes. Stores call it through
// their hooks, which tests replace.
func openDirect(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|unix.O_DIRECT, 0)
}

// directWriter is a dataFile's O_DIRECT descriptor.
type directWriter struct {
	f     *os.File
	store *Store
}

// openDirectWriter opens path for O_DIRECT writes, unless the store's
// filesystem has refused O_DIRECT, now or before.
func (s *Store) openDirectWriter(path string) *directWriter {
	if s.directOff.Load() {
		return nil
	}
	f, err := s.hooks.openDirect(path)
	if err != nil {
		s.directRefused(err)
		return nil
	}
	return &directWriter{f: f, store: s}
}

// writeAt writes p at off through the O_DIRECT descriptor if it can, and
// reports whether it did. A refusal (EINVAL) turns O_DIRECT off for the
// store and leaves the write to the caller.
func (w *directWriter) writeAt(p []byte, off int64) (bool, error) {
	if !w.active() || !directAligned(p, off) {
		return false, nil
	}
	_, err := w.store.hooks.directWrite(w.f, p, off)
	if errors.Is(err, unix.EINVAL) {
		w.store.directRefused(err)
		return false, nil
	}
	return err == nil, err
}

// active reports whether writes still go through the O_DIRECT descriptor.
func (w *directWriter) active() bool {
	return w != nil && !w.store.directOff.Load()
}

func (w *directWriter) close() {
	if w != nil {
		w.f.Close()
	}
}

// directAligned reports whether p at off meets O_DIRECT's alignment. The
// pool's slots are page-aligned (bufpool.go); a buffer from beyond them
// comes from the heap, whose alignment is the runtime's choice, so it is
// checked rather than assumed.
func directAligned(p []byte, off int64) bool {
	return len(p) > 0 && off%directAlign == 0 && len(p)%directAlign == 0 &&
		uintptrOf(p)%directAlign == 0
}

// directRefused notes that the cache filesystem refused O_DIRECT, after
// which no file of the store tries it. It is said once per store, at
// debug level: writes then go through the page cache and work as before.
func (s *Store) directRefused(err error) {
	if !s.directOff.Swap(true) {
		s.log.Debug("the cache filesystem refuses O_DIRECT: chunks are written through the page cache", "dir", s.root, "error", err)
	}
}

// uintptrOf returns the address of b's first byte.
func uintptrOf(b []byte) uintptr {
	return uintptr(unsafe.Pointer(unsafe.SliceData(b)))
}

// startWriteback asks the kernel to begin writing r to disk now, without
// waiting. Commit must fsync the whole blob; started early, writeback runs
// alongside the download and the final fsync has little left to do.
func startWriteback(f *os.File, r byterange.Range) {
	// Best effort: on failure the fsync at commit does all the work.
	_ = unix.SyncFileRange(int(f.Fd()), r.Start, r.Len(), unix.SYNC_FILE_RANGE_WRITE)
}
