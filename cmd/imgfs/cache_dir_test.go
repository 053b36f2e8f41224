package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestUnusableCacheDir: a cache directory that cannot be used, or none to
// be had, is reported on one line with the directory, the cause and how
// to choose another. The cache's error says the first two; the hint is
// the command line's, since the flag is.
func TestUnusableCacheDir(t *testing.T) {
	const hint = "(set --cache-dir or IMGFS_CACHE_DIR)"
	t.Run("not a directory", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		r := imgfs(t, nil, "cache", "ls", "--cache-dir", file)
		wantError(t, r, 1, "cache directory "+file+" is not usable", "not a directory", hint)
	})
	t.Run("no home", func(t *testing.T) {
		r := imgfs(t, []string{"IMGFS_CACHE_DIR=", "XDG_CACHE_HOME=", "HOME="}, "cache", "ls")
		wantError(t, r, 1, "no cache directory", "$HOME is not defined", hint)
	})
}
