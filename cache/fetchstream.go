package cache

import (
	"context"
	"time"

	"github.com/imgfs/imgfs/cache/internal/blobfsm"
)

// The waits of a run's fetch before it reads each chunk from its request:
// a stream run (blobfsm.Plan.Stream) waits until a want has claimed the
// chunk for it, and every run waits while the hasher is too far behind to
// hold what it lands. Not reading meanwhile is pacing,
// not a stalled source, so the request's idle timer is stopped.

// defaultStreamPause is how long a stream run waits at its edge for a
// want to extend it before it ends (its readers have stopped or gone),
// and how long a run waits for a hasher that makes no progress: a Store's
// streamPause.
const defaultStreamPause = 2 * time.Second

// awaitClaim waits until stream run holds chunk c, and reports false if it
// never will: c went to another run, the generation or phase moved on, or
// no want reached c for streamPause.
func (b *Blob) awaitClaim(ctx context.Context, run blobfsm.Run, c int64, in *idleReader) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	var pause *time.Timer
	defer func() {
		if pause != nil {
			pause.Stop()
		}
	}()
	for {
		if b.m.Owns(run.Gen, run.ID, c) {
			if pause != nil {
				in.idle.Reset(in.timeout)
			}
			return true
		}
		if !b.m.AwaitsClaim(run.Gen, run.ID, c) {
			return false
		}
		if pause == nil {
			in.idle.Stop()
			pause = time.NewTimer(b.store.streamPause)
		}
		if !b.waitChangedLocked(ctx, pause) {
			return false
		}
	}
}

// awaitHasher holds a run back before it reads chunk c while the hasher
// is too far behind (blobfsm.Machine.HashBehind): landed now, c's buffer could
// not be held (heldbufs.go), and the hasher and the reads of c would both
// fetch it back from the disk. A fill's parallel runs wait so for the one
// landing the chunks just past the frontier. The wait ends as the hasher
// catches up, which needs no new want, or once it has made no progress
// for streamPause; c is then landed anyway.
func (b *Blob) awaitHasher(ctx context.Context, c int64, in *idleReader) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.m.HashBehind(c) {
		return
	}
	in.idle.Stop()
	defer in.idle.Reset(in.timeout)
	stall := time.NewTimer(b.store.streamPause)
	defer stall.Stop()
	for b.m.HashBehind(c) {
		hashedTo := b.m.HashedTo()
		if !b.waitChangedLocked(ctx, stall) {
			return
		}
		if b.m.HashedTo() != hashedTo {
			stall.Reset(b.store.streamPause)
		}
	}
}

// waitChangedLocked waits, with b.mu released, for the machine's next
// wake, and reports false instead if timer fires or ctx ends first. b.mu
// must be held, and is held again on return.
func (b *Blob) waitChangedLocked(ctx context.Context, timer *time.Timer) bool {
	changed := b.changed
	b.mu.Unlock()
	defer b.mu.Lock()
	select {
	case <-changed:
		return true
	case <-timer.C:
	case <-ctx.Done():
	}
	return false
}
