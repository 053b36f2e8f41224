package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/imgfs/imgfs/internal/testfuse"
)

// TestBackgroundMountInterrupted: Ctrl-C on `imgfs mount --background`
// while the mount is still starting (here, against a registry that
// accepts connections and never answers) stops the background child too,
// promptly, and leaves nothing mounted. The child runs in a session of
// its own, so the terminal's SIGINT reaches only the parent.
func TestBackgroundMountInterrupted(t *testing.T) {
	testfuse.Require(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	})

	mnt := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "mount", "--background", "--cache-dir", t.TempDir(),
		"--fetch-timeout", "2m", ln.Addr().String()+"/silent:v1", mnt)
	cmd.Env = append(os.Environ(), "IMGFS_RUN_MAIN=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the background child to start", func() bool { return len(processesWithArg(mnt)) > 1 })
	time.Sleep(200 * time.Millisecond) // into the child's start-up
	start := time.Now()
	cmd.Process.Signal(syscall.SIGINT)
	err = cmd.Wait()
	took := time.Since(start)
	if err == nil {
		t.Fatalf("interrupted background mount exited 0\nstderr: %s", stderr.String())
	}
	if msg := stderr.String(); !strings.Contains(msg, "interrupted") || !strings.Contains(msg, "stopped before it was ready") {
		t.Errorf("stderr of the interrupted mount: %q, want it to say it was interrupted and the mount stopped", msg)
	}
	if took > childStopGrace {
		t.Errorf("the interrupted mount took %s to exit, more than the %s grace: the child ignored SIGTERM", took, childStopGrace)
	}
	if left := processesWithArg(mnt); len(left) > 0 {
		t.Errorf("processes still running for %s after the interrupt: %v", mnt, left)
	}
	if isMounted(mnt) {
		unmountQuietly(mnt)
		t.Errorf("%s is mounted after the interrupt", mnt)
	}
}

// processesWithArg returns the pids of the processes with arg on their
// command line.
func processesWithArg(arg string) []string {
	var pids []string
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range dirs {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, a := range bytes.Split(data, []byte{0}) {
			if string(a) == arg {
				pids = append(pids, filepath.Base(filepath.Dir(p)))
				break
			}
		}
	}
	return pids
}
