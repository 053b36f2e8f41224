package fusefs

import "github.com/hanwen/go-fuse/v2/fuse"

// noFlush answers FLUSH with ENOSYS. The kernel sends a FLUSH on every
// close(2) and waits for the answer, but a read-only filesystem has
// nothing to flush; on ENOSYS the kernel stops sending FLUSH for the rest
// of the mount and close no longer waits on the daemon. The one FLUSH that
// arrives is counted, so a test can see the kernel stopped.
type noFlush struct {
	fuse.RawFileSystem
	stats *counters
}

func (n *noFlush) Flush(cancel <-chan struct{}, in *fuse.FlushIn) fuse.Status {
	n.stats.flushes.Add(1)
	return fuse.ENOSYS
}
