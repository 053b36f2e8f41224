package fusefs

import (
	"bytes"
	"io"
	"path/filepath"
	"testing"

	"github.com/imgfs/imgfs/internal/testfuse"
)

// TestInvalidateBlobDropsCachedPages reads a blob, changes what the blob
// source serves, and checks that the kernel keeps serving its cached pages
// until InvalidateBlob drops them: that is what stops bytes that failed
// verification from outliving the mismatch.
func TestInvalidateBlobDropsCachedPages(t *testing.T) {
	testfuse.Require(t)
	ti := newTestImage(t)
	srv, mnt := mountTest(t, ti, io.Discard)
	d := ti.small.Digest
	path := filepath.Join(mnt, blobPath(d))
	first := ti.blobs.data[d]
	if got := mustRun(t, "cat", path); got != string(first) {
		t.Fatal("first read differs from the blob")
	}

	fresh := bytes.Repeat([]byte{'x'}, len(first))
	ti.blobs.replace(d, fresh)
	if got := mustRun(t, "cat", path); got != string(first) {
		t.Fatal("the kernel did not keep the blob's pages (FOPEN_KEEP_CACHE), so this test proves nothing")
	}
	srv.InvalidateBlob(d)
	if got := mustRun(t, "cat", path); got != string(fresh) {
		t.Errorf("after InvalidateBlob a read still returns the old pages")
	}

	srv.InvalidateBlob("sha256:0000000000000000000000000000000000000000000000000000000000000000")
	if err := srv.Unmount(); err != nil {
		t.Fatal(err)
	}
	srv.Wait()
	srv.InvalidateBlob(d) // after unmount: nothing to drop, and no panic
}
