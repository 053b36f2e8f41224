package layout

import (
	"io/fs"
	"os"
	"syscall"
)

// DiskBytes is what a file takes on disk (st_blocks × 512, what du(1)
// counts). A partial blob is sparse: only the chunks fetched are
// allocated.
func DiskBytes(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return fi.Size()
}

// FileDiskBytes is DiskBytes of the file at path, 0 if it is gone.
func FileDiskBytes(path string) int64 {
	fi, err := os.Lstat(path)
	if err != nil {
		return 0
	}
	return DiskBytes(fi)
}
