package cache

import (
	"context"
	"fmt"

	"github.com/imgfs/imgfs/cache/internal/blobfsm"
)

// AwaitCommit waits until the blob r reads, already verified, is committed
// to blobs/, and returns nil then. It returns an error at once when the
// blob is not verified (ErrBlobNotVerified), and when the commit fails or
// ctx ends. Callers that store something derived from the blob's bytes use
// it to store only what a committed blob backs, without waiting on the
// commit's fsync in the read that needed the verdict.
func (r *Reader) AwaitCommit(ctx context.Context) error {
	b := r.blob
	b.mu.Lock()
	for {
		switch b.m.Phase() {
		case blobfsm.PhaseComplete:
			b.mu.Unlock()
			return nil
		case blobfsm.PhaseCommitFailed:
			err := b.m.CommitErr()
			b.mu.Unlock()
			return err
		case blobfsm.PhaseCommitting:
		default:
			b.mu.Unlock()
			return fmt.Errorf("blob %s: %w", b.desc.Digest, ErrBlobNotVerified)
		}
		changed := b.changed
		b.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("blob %s: waiting for the commit: %w", b.desc.Digest, ctx.Err())
		}
		b.mu.Lock()
	}
}
