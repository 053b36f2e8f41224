package main

import (
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/imgfs/imgfs/internal/testregistry"
)

func mountReadOnlyTmpfs(dir string) error {
	return unix.Mount("tmpfs", dir, "tmpfs", unix.MS_RDONLY, "size=1m")
}

func unmountQuietly(dir string) { unix.Unmount(dir, unix.MNT_DETACH) }

func isMounted(path string) bool {
	_, ok := mountOptions(path)
	return ok
}

// mountOptions returns the per-mount and superblock options of the mount
// at path in /proc/self/mountinfo, joined by a comma.
func mountOptions(path string) (string, bool) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", false
	}
	found, opts := false, ""
	for _, line := range strings.Split(string(data), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if ok && len(f) > 5 && len(g) > 2 && f[4] == path {
			found, opts = true, f[5]+","+g[2]
		}
	}
	return opts, found
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runReaders starts every shell command at once and waits for them all;
// a reader that exits non-zero is a test error.
func runReaders(t *testing.T, scripts []string) {
	t.Helper()
	var cmds []*exec.Cmd
	for _, script := range scripts {
		c := exec.Command("sh", "-c", script)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("reader: %v", err)
		}
	}
}

// backgroundPID reads the server's pid from mount --background's output.
func backgroundPID(t *testing.T, out string) int {
	t.Helper()
	_, rest, ok := strings.Cut(out, "(pid ")
	if !ok {
		t.Fatalf("no pid in %q", out)
	}
	num, _, _ := strings.Cut(rest, ",")
	pid, err := strconv.Atoi(num)
	if err != nil {
		t.Fatalf("pid in %q: %v", out, err)
	}
	return pid
}

func readAllFrom(r io.Reader) ([]byte, error) { return io.ReadAll(r) }

var (
	bigOnce   sync.Once
	bigPushed testregistry.Pushed
	bigErr    error
)
