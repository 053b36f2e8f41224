package cache

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/imgfs/imgfs/internal/errdefs"
)

func TestAwaitCommitWaitsForTheCommitOfAVerifiedBlob(t *testing.T) {
	s := testStore(t, Options{})
	desc, f := testBlob(t, 300_000)
	r := openReader(t, s, desc, f)
	readAll(t, r, int(desc.Size), 64<<10)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.AwaitCommit(ctx); err != nil {
		t.Fatalf("AwaitCommit after a verified read = %v", err)
	}
	if !s.Exists(desc) {
		t.Fatal("AwaitCommit returned before the blob was in blobs/")
	}
}

func TestAwaitCommitRefusesABlobNotVerified(t *testing.T) {
	s := testStore(t, Options{})
	desc, f := testBlob(t, 300_000)
	r := openReader(t, s, desc, f)
	if _, err := r.ReadAt(context.Background(), make([]byte, 4096), 0); err != nil {
		t.Fatal(err)
	}
	if err := r.AwaitCommit(context.Background()); !errors.Is(err, ErrBlobNotVerified) {
		t.Fatalf("AwaitCommit after a partial read = %v, want ErrBlobNotVerified", err)
	}

	// A blob whose bytes failed verification is no nearer a commit.
	desc2, f2 := testBlob(t, 200_000)
	f2.corrupt = true
	r2 := openReader(t, s, desc2, f2)
	if _, err := r2.ReadAt(context.Background(), make([]byte, desc2.Size), 0); !errors.Is(err, errdefs.ErrDigestMismatch) {
		t.Fatalf("read of a corrupt blob = %v, want errdefs.ErrDigestMismatch", err)
	}
	if err := r2.AwaitCommit(context.Background()); !errors.Is(err, ErrBlobNotVerified) {
		t.Fatalf("AwaitCommit after a mismatch = %v, want ErrBlobNotVerified", err)
	}
}
