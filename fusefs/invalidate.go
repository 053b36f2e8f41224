package fusefs

import (
	"syscall"

	"github.com/opencontainers/go-digest"
)

// InvalidateBlob drops the kernel's cached pages of the blob d, so that the
// next read of it comes to the filesystem again. Blobs are opened with
// FOPEN_KEEP_CACHE, so without this, pages of bytes that later failed
// verification would go on being served from the kernel's page cache.
//
// It is safe to call from any goroutine, also after unmount, when it does
// nothing. It must not be called from a FUSE request handler of this
// mount: the kernel waits for reads in flight on the blob's pages before
// it drops them.
func (s *Server) InvalidateBlob(d digest.Digest) {
	f, ok := s.fsys.files[d]
	if !ok {
		s.fsys.log.Debug("invalidate: blob not in this mount", "digest", d)
		return
	}
	switch errno := f.NotifyContent(0, 0); errno {
	case 0:
		s.fsys.log.Debug("dropped the kernel's cached pages of the blob", "digest", d)
	case syscall.ENOENT:
		// The kernel holds no inode for it, so no pages either.
		s.fsys.log.Debug("invalidate: blob not looked up by the kernel", "digest", d)
	default:
		// EBADF once the mount is gone: no pages are left to drop.
		s.fsys.log.Debug("invalidate blob pages", "digest", d, "errno", errno)
	}
}
