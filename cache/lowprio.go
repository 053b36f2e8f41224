package cache

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// lowerPriority moves the calling goroutine onto a thread of its own at
// nice 10 and keeps it there until the goroutine exits, when Go discards
// the thread. Hashing runs like this: on a machine busy serving reads it
// takes the CPU that readers and fetches leave, and catches up when they
// are idle, so verification does not slow reads down.
func lowerPriority() {
	runtime.LockOSThread()
	// Best effort: without it hashing merely competes at normal priority.
	_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), 10)
}
