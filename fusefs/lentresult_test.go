package fusefs

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imgfs/imgfs/internal/testfuse"
)

// lendingFake lends its bytes in two slices per read, so that a reply is
// written from more than one.
type lendingFake struct{ *fakeReader }

func (r lendingFake) ReadLend(ctx context.Context, p []byte, off int64) ([][]byte, func(), int, error) {
	if r.err != nil || off >= int64(len(r.data)) {
		n, err := r.ReadAt(ctx, p, off)
		return nil, nil, n, err
	}
	end := min(off+int64(len(p)), int64(len(r.data)))
	mid := off + (end-off)/2
	r.f.lends.Add(1)
	given := false
	giveBack := func() {
		if !given {
			given = true
			r.f.givenBacks.Add(1)
		}
	}
	var err error
	if end < off+int64(len(p)) {
		err = io.EOF
	}
	return [][]byte{r.data[off:mid], r.data[mid:end]}, giveBack, int(end - off), err
}

// TestLentReadsAreRepliedAndGivenBack reads a blob through the mount from
// a reader that lends: the file's bytes are the blob's, and every lent
// read is given back once its reply is written.
func TestLentReadsAreRepliedAndGivenBack(t *testing.T) {
	testfuse.Require(t)
	ti := newTestImage(t)
	ti.blobs.lend = true
	_, mnt := mountTest(t, ti, io.Discard)
	got, err := os.ReadFile(filepath.Join(mnt, blobPath(ti.lazy.Digest)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, ti.blobs.data[ti.lazy.Digest]) {
		t.Fatalf("read %d bytes through lent replies, not the blob's %d", len(got), ti.lazy.Size)
	}
	lends := ti.blobs.lends.Load()
	if lends == 0 {
		t.Fatal("no read was lent")
	}
	// Readahead replies may still be on their way when ReadFile returns.
	deadline := time.Now().Add(10 * time.Second)
	for ti.blobs.givenBacks.Load() != ti.blobs.lends.Load() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g, l := ti.blobs.givenBacks.Load(), ti.blobs.lends.Load(); g != l {
		t.Errorf("%d of %d lent reads given back", g, l)
	}
}
