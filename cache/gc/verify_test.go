package gc

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/cache/internal/layout"
	"github.com/imgfs/imgfs/internal/errdefs"
)

func TestVerifyRepairRemovesCorruptBlob(t *testing.T) {
	s := testStore(t, cache.Options{})
	good, gf := testBlob(t, 10_000)
	bad, bf := testBlob(t, 20_000)
	for _, c := range []struct {
		desc ocispec.Descriptor
		f    *memFetcher
	}{{good, gf}, {bad, bf}} {
		if err := s.Fill(context.Background(), c.desc, c.f, nil); err != nil {
			t.Fatal(err)
		}
	}
	badPath, _ := layout.BlobPath(s.Root(), bad.Digest)
	os.Chmod(badPath, 0o600)
	if err := os.WriteFile(badPath, bytes.Repeat([]byte{1}, 20_000), 0o600); err != nil {
		t.Fatal(err)
	}
	var reported []VerifyResult
	sum, err := Verify(context.Background(), s, false, func(r VerifyResult) { reported = append(reported, r) })
	if err != nil || sum != (VerifySummary{Checked: 2, Bad: 1}) || len(reported) != 2 {
		t.Fatalf("Verify = %+v, %v, %v", sum, err, reported)
	}
	for _, r := range reported {
		if (r.Digest == bad.Digest) != errors.Is(r.Err, errdefs.ErrDigestMismatch) {
			t.Fatalf("reported %s: %v", r.Digest, r.Err)
		}
	}
	sum, err = Verify(context.Background(), s, true, nil)
	if err != nil || sum != (VerifySummary{Checked: 2, Bad: 1, Removed: 1}) {
		t.Fatalf("Verify --repair = %+v, %v", sum, err)
	}
	if s.Exists(bad) || !s.Exists(good) {
		t.Fatalf("after repair: bad exists %v, good exists %v", s.Exists(bad), s.Exists(good))
	}
}
