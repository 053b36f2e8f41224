package cache

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenUnusableDir: the error names the directory and the cause, wraps
// ErrDirUnusable for the caller to add how to choose another, and names
// no flag of the command line's.
func TestOpenUnusableDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(file, Options{})
	if !errors.Is(err, ErrDirUnusable) {
		t.Fatalf("Open of a file = %v, want ErrDirUnusable", err)
	}
	if msg := err.Error(); !strings.Contains(msg, file) || !strings.Contains(msg, "not a directory") || strings.Contains(msg, "--") {
		t.Errorf("Open of a file: %q, want the directory and the cause, and no flag", msg)
	}
}

// TestDefaultRootWithoutHome: with no variable to choose the directory
// from, DefaultRoot's error wraps ErrDirUnusable and the cause.
func TestDefaultRootWithoutHome(t *testing.T) {
	t.Setenv("IMGFS_CACHE_DIR", "")
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "")
	_, err := DefaultRoot()
	if !errors.Is(err, ErrDirUnusable) || strings.Contains(err.Error(), "--") {
		t.Fatalf("DefaultRoot without a home = %v, want ErrDirUnusable and no flag", err)
	}
}
