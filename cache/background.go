package cache

import "sync"

// workGroup counts the goroutines a Store runs. join refuses once close has
// been called, so that wait, which follows close, never races an Add. Its
// mutex is a leaf: nothing else is locked while it is held.
type workGroup struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func (g *workGroup) join() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Add(1)
	return true
}

func (g *workGroup) leave() { g.wg.Done() }

func (g *workGroup) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

func (g *workGroup) wait() { g.wg.Wait() }
