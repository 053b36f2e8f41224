// Package testfuse is the tests' one rule for FUSE: a test that needs it
// skips on a developer's machine without it, and fails under CI, where a
// missing /dev/fuse must never pass as a silent skip.
package testfuse

import (
	"os"
	"testing"
)

// Require skips t, or fails it when CI is set, unless /dev/fuse opens
// for reading and writing, as a mount needs.
func Require(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err == nil {
		f.Close()
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set but FUSE is unavailable: %v", err)
		}
		t.Skipf("FUSE unavailable: %v", err)
	}
}
