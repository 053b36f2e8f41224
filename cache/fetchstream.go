package cache

import (
	"context"
	"time"
)

// The fetch side of a stream run (blobmachine_stream.go): before reading
// each chunk from its request, the fetch waits until a want has claimed
// that chunk for it.

// streamPause is how long a stream run waits at its edge for a want to
// extend it before it ends: its readers have stopped or gone.
var streamPause = 2 * time.Second

// awaitClaim waits until stream run holds chunk c, and reports false if it
// never will: c went to another run, the generation or phase moved on, or
// no want reached c for streamPause. Not reading meanwhile is the pacing,
// not a stalled source, so in's idle timer is stopped while it waits.
func (b *Blob) awaitClaim(ctx context.Context, run fetchRun, c int64, in *idleReader) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	var pause *time.Timer
	defer func() {
		if pause != nil {
			pause.Stop()
		}
	}()
	for {
		if b.m.owns(run.gen, run.id, c) {
			if pause != nil {
				in.idle.Reset(in.timeout)
			}
			return true
		}
		if !b.m.awaitsClaim(run.gen, run.id, c) {
			return false
		}
		if pause == nil {
			in.idle.Stop()
			pause = time.NewTimer(streamPause)
		}
		changed := b.changed
		b.mu.Unlock()
		select {
		case <-changed:
		case <-pause.C:
			b.mu.Lock()
			return false
		case <-ctx.Done():
			b.mu.Lock()
			return false
		}
		b.mu.Lock()
	}
}

// awaitHasher holds a read run (a stream, or a bounded run of a reader's
// readahead; fills write through the page cache and are not held back)
// before it reads chunk c while the hasher is too far behind
// (blobMachine.hashBehind): landed now, c's
// buffer could not be held (heldbufs.go), and the hasher and the reads of
// c would both fetch it back from the disk. The wait ends as the hasher
// catches up, which needs no fetch, or once it has made no progress for
// streamPause; c is then landed anyway. Not reading meanwhile is pacing,
// so in's idle timer is stopped.
func (b *Blob) awaitHasher(ctx context.Context, c int64, in *idleReader) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.m.hashBehind(c) {
		return
	}
	in.idle.Stop()
	defer in.idle.Reset(in.timeout)
	stall := time.NewTimer(streamPause)
	defer stall.Stop()
	for b.m.hashBehind(c) {
		hashedTo, changed := b.m.hashedTo, b.changed
		b.mu.Unlock()
		select {
		case <-changed:
		case <-stall.C:
			b.mu.Lock()
			return
		case <-ctx.Done():
			b.mu.Lock()
			return
		}
		b.mu.Lock()
		if b.m.hashedTo != hashedTo {
			stall.Reset(streamPause)
		}
	}
}
