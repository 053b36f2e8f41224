package main

import (
	"runtime/debug"
	"testing"
)

// TestLimitMemory: the mount server sets a soft memory limit of at least
// the floor, and keeps one set through GOMEMLIMIT.
func TestLimitMemory(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(old)

	t.Setenv("GOMEMLIMIT", "")
	limitMemory()()
	if got := debug.SetMemoryLimit(-1); got < memoryFloor || got == old {
		t.Errorf("memory limit %d, want at least %d", got, memoryFloor)
	}

	debug.SetMemoryLimit(old)
	t.Setenv("GOMEMLIMIT", "1GiB")
	limitMemory()()
	if got := debug.SetMemoryLimit(-1); got != old {
		t.Errorf("with GOMEMLIMIT set, the memory limit became %d, want %d as it was", got, old)
	}
}
