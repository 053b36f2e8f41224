package cache

import (
	"os"

	"golang.org/x/sys/unix"
)

// Every fsync and rename the cache's durability depends on goes through
// these, so that tests can make them fail or record their order.
var (
	syncFile   = (*os.File).Sync
	syncData   = func(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }
	renameFile = os.Rename
	syncDir    = func(dir string) error {
		d, err := os.Open(dir)
		if err != nil {
			return err
		}
		err = d.Sync()
		if cerr := d.Close(); err == nil {
			err = cerr
		}
		return err
	}
)
