package imagemount

import (
	"context"
	"sync"
	"time"
)

// workGroup is the goroutines a mount starts. Each gets the mount's
// context, which close cancels; close waits for all of them. Work started
// with lingering (the config fetch, prefetch) is first given a grace
// period to finish, so that an unmount right after mounting still leaves
// the configs cached.
type workGroup struct {
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	closed    bool
	all       sync.WaitGroup
	lingering sync.WaitGroup
}

func newWorkGroup() *workGroup {
	ctx, cancel := context.WithCancel(context.Background())
	return &workGroup{ctx: ctx, cancel: cancel}
}

// goWork runs fn in a goroutine of the group, and reports false, running
// nothing, once the group is closing.
func (w *workGroup) goWork(fn func(ctx context.Context)) bool { return w.start(fn, false) }

// goLingering is goWork for work that close lets finish within its grace
// period.
func (w *workGroup) goLingering(fn func(ctx context.Context)) bool { return w.start(fn, true) }

func (w *workGroup) start(fn func(ctx context.Context), linger bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	w.all.Add(1)
	if linger {
		w.lingering.Add(1)
	}
	go func() {
		defer w.all.Done()
		if linger {
			defer w.lingering.Done()
		}
		fn(w.ctx)
	}()
	return true
}

// close refuses new work, waits up to grace for the lingering work, then
// cancels everything and waits for it to return.
func (w *workGroup) close(grace time.Duration) {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	done := make(chan struct{})
	go func() { w.lingering.Wait(); close(done) }()
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	}
	w.cancel()
	w.all.Wait()
}
