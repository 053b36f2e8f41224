package gc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/cache/internal/layout"
	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/errdefs"
	"github.com/imgfs/imgfs/internal/oci"
)

// VerifyResult is the verdict on one committed blob.
type VerifyResult struct {
	Digest digest.Digest
	Size   int64
	Err    error // nil if the blob hashes to its name
}

// VerifySummary counts what Verify found.
type VerifySummary struct {
	Checked, Bad, Removed int
}

// Verify re-hashes every committed blob under blobs/ and reports each to
// report (if not nil). A blob is bad if its name is not a valid digest or
// its content hashes to something else. With repair, bad blobs are
// removed, so the next read fetches them afresh. It returns early with
// ctx's error.
func Verify(ctx context.Context, s *cache.Store, repair bool, report func(VerifyResult)) (VerifySummary, error) {
	var sum VerifySummary
	if report == nil {
		report = func(VerifyResult) {}
	}
	blobs := filepath.Join(s.Root(), layout.Blobs)
	algs, err := os.ReadDir(blobs)
	if err != nil {
		return sum, fmt.Errorf("verify cache: %w", err)
	}
	for _, alg := range algs {
		if !alg.IsDir() {
			continue
		}
		dir := filepath.Join(blobs, alg.Name())
		entries, err := os.ReadDir(dir)
		if err != nil {
			return sum, fmt.Errorf("verify cache: %w", err)
		}
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return sum, err
			}
			path := filepath.Join(dir, e.Name())
			res := VerifyResult{Digest: digest.Digest(alg.Name() + ":" + e.Name())}
			res.Size, res.Err = verifyFile(ctx, path, res.Digest)
			if errors.Is(res.Err, context.Canceled) || errors.Is(res.Err, context.DeadlineExceeded) {
				return sum, res.Err
			}
			sum.Checked++
			if res.Err != nil {
				sum.Bad++
				if repair {
					if err := os.Remove(path); err == nil || errors.Is(err, fs.ErrNotExist) {
						sum.Removed++
					} else {
						res.Err = fmt.Errorf("%w (not removed: %v)", res.Err, err)
					}
				}
			}
			report(res)
		}
	}
	return sum, nil
}

// verifyFile hashes the file at path and compares it with want.
func verifyFile(ctx context.Context, path string, want digest.Digest) (int64, error) {
	if err := oci.CheckDigest(want); err != nil {
		return 0, err
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("%s is not a regular file", path)
	}
	h := want.Algorithm().Hash()
	n, err := io.Copy(h, blobio.ContextReader(ctx, f))
	if err != nil {
		return n, err
	}
	if got := digest.NewDigest(want.Algorithm(), h); got != want {
		return n, fmt.Errorf("%w: content hashes to %s", errdefs.ErrDigestMismatch, got)
	}
	return n, nil
}
