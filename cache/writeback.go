package cache

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/imgfs/imgfs/internal/byterange"
)

// startWriteback asks the kernel to begin writing r to disk now, without
// waiting. Commit must fsync the whole blob; started early, writeback runs
// alongside the download and the final fsync has little left to do.
func startWriteback(f *os.File, r byterange.Range) {
	// Best effort: on failure the fsync at commit does all the work.
	_ = unix.SyncFileRange(int(f.Fd()), r.Start, r.Len(), unix.SYNC_FILE_RANGE_WRITE)
}
