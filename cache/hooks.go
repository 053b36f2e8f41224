package cache

import (
	"hash"
	"os"

	"golang.org/x/sys/unix"
)

// hooks are the calls tests replace, held by each Store (Store.hooks) so
// that a test changes only the store it opened. Open fills them with
// realHooks; a test replaces them on its store before using it.
type hooks struct {
	// Every fsync and rename the cache's durability depends on goes
	// through these, so that tests can make them fail or record their
	// order.
	syncFile   func(f *os.File) error
	syncData   func(f *os.File) error
	renameFile func(from, to string) error
	syncDir    func(dir string) error

	// openDirect opens a file for O_DIRECT writes, and directWrite writes
	// through such a file (directio.go), so that tests can play a
	// filesystem that refuses O_DIRECT at open or at the first write.
	openDirect  func(path string) (*os.File, error)
	directWrite func(f *os.File, p []byte, off int64) (int, error)

	// hashChunk feeds the hasher, so that tests can slow it down;
	// onFileRead is told of each read a partial blob serves from its file
	// rather than from held buffers, and onHashReadBack of each chunk the
	// hasher reads back from the file, so that tests can count them.
	hashChunk      func(h hash.Hash, p []byte)
	onFileRead     func()
	onHashReadBack func()
}

// realHooks returns the hooks of a store outside tests.
func realHooks() hooks {
	return hooks{
		syncFile:   (*os.File).Sync,
		syncData:   func(f *os.File) error { return unix.Fdatasync(int(f.Fd())) },
		renameFile: os.Rename,
		syncDir:    syncDir,

		openDirect:  openDirect,
		directWrite: (*os.File).WriteAt,

		hashChunk:      func(h hash.Hash, p []byte) { h.Write(p) },
		onFileRead:     func() {},
		onHashReadBack: func() {},
	}
}

// syncDir fsyncs a directory, so that a rename in it is durable.
func syncDir(dir string) error {
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
