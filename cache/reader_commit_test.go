package cache

import (
	"context"
	"errors"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/errdefs"
)

func TestOnCommitTellsOfEachCommittedBlobOnly(t *testing.T) {
	s := testStore(t, Options{})
	committed := make(chan ocispec.Descriptor, 4)
	s.OnCommit(func(d ocispec.Descriptor) { committed <- d })

	bad, fb := testBlob(t, 200_000)
	fb.corrupt = true
	rb := openReader(t, s, bad, fb)
	if _, err := rb.ReadAt(context.Background(), make([]byte, bad.Size), 0); !errors.Is(err, errdefs.ErrDigestMismatch) {
		t.Fatalf("read of a corrupt blob = %v, want errdefs.ErrDigestMismatch", err)
	}
	desc, f := testBlob(t, 300_000)
	r := openReader(t, s, desc, f)
	readAll(t, r, int(desc.Size), 64<<10)
	select {
	case got := <-committed:
		if got.Digest != desc.Digest || got.Size != desc.Size {
			t.Fatalf("OnCommit told of %s (%d bytes), want %s", got.Digest, got.Size, desc.Digest)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OnCommit not told of a verified blob within 10 s")
	}
	select {
	case got := <-committed:
		t.Fatalf("OnCommit told again, of %s", got.Digest)
	case <-time.After(100 * time.Millisecond):
	}
}

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
