package cache

import (
	"hash"
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

// Tests slow the hasher down, and count reads that a partial blob serves
// from its file rather than from held buffers, and chunks the hasher
// reads back from the file, through these.
var (
	hashChunk      = func(h hash.Hash, p []byte) { h.Write(p) }
	onFileRead     = func() {}
	onHashReadBack = func() {}
)
