package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/imgfs/imgfs/internal/testregistry"
)

// TestErrorLines checks the exact stderr of a usage error, a registry
// error and a real SIGINT: only the last may say "interrupted".
func TestErrorLines(t *testing.T) {
	fx := registryFixtures(t)

	t.Run("unknown flag", func(t *testing.T) {
		r := imgfs(t, nil, "fetch", "--nope", "x")
		wantStderr(t, r, 2, "imgfs: unknown flag: --nope (see imgfs fetch --help)\n")
	})

	t.Run("bad --verify", func(t *testing.T) {
		r := imgfs(t, nil, "mount", "--verify", "sometimes", fx.reg.Reference("three/oci", "v1"), t.TempDir())
		wantError(t, r, 2, "--verify", "sometimes")
	})

	t.Run("bad --index", func(t *testing.T) {
		r := imgfs(t, nil, "mount", "--index", "soci-only", fx.reg.Reference("three/oci", "v1"), t.TempDir())
		wantError(t, r, 2, "--index", "soci-only", "auto or none")
	})

	t.Run("registry error", func(t *testing.T) {
		ref := fx.reg.Reference("three/oci", "nope")
		r := imgfs(t, nil, "fetch", "--cache-dir", t.TempDir(), ref)
		wantStderr(t, r, 1, "imgfs: not found: "+ref+"\n")
	})

	t.Run("SIGINT", func(t *testing.T) {
		proxy := testregistry.StartProxy(t, fx.reg.Host())
		layer := fx.three[false].Layers[2]
		proxy.SetFault(testregistry.Stall.On(layer.Digest.String()))
		cmd := exec.Command(os.Args[0], "fetch", "--quiet", "--max-concurrent-downloads", "1", "--cache-dir", t.TempDir(), proxy.Host()+"/three/oci:v1")
		cmd.Env = append(os.Environ(), "IMGFS_RUN_MAIN=1")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the stalled layer request", func() bool {
			for _, req := range proxy.Requests() {
				if strings.Contains(req.Path, layer.Digest.String()) {
					return true
				}
			}
			return false
		})
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var err error
		select {
		case err = <-done:
		case <-time.After(commandTimeout):
			cmd.Process.Kill()
			t.Fatal("imgfs fetch did not exit after SIGINT")
		}
		var exit *exec.ExitError
		code := 0
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		}
		wantStderr(t, result{stderr: stderr.String(), code: code}, 1, "imgfs: interrupted: fetch layer "+layer.Digest.String()+": fill "+layer.Digest.String()+": context canceled\n")
	})
}

// wantStderr checks the exit code and the whole of stderr.
func wantStderr(t *testing.T, r result, code int, want string) {
	t.Helper()
	if r.code != code || r.stderr != want {
		t.Errorf("exit %d, stderr %q\nwant exit %d, stderr %q", r.code, r.stderr, code, want)
	}
}

// TestPanicIsOneLine runs a command that panics through execute, the
// command's edge: the user gets one line, and the stack only with --debug.
func TestPanicIsOneLine(t *testing.T) {
	for _, debug := range []bool{false, true} {
		g := &globalFlags{debug: debug}
		root := &cobra.Command{Use: "imgfs", SilenceErrors: true, SilenceUsage: true}
		root.AddCommand(&cobra.Command{Use: "boom", Run: func(*cobra.Command, []string) { panic("boom") }})
		root.SetArgs([]string{"boom"})
		stderr := captureStderr(t, func() {
			err := execute(context.Background(), root, g)
			if err == nil || err.Error() != "internal error: boom (please report this)" {
				t.Errorf("debug=%v: error %v", debug, err)
			}
		})
		if hasStack := strings.Contains(stderr, "goroutine "); hasStack != debug {
			t.Errorf("debug=%v: stack printed: %v\n%s", debug, hasStack, stderr)
		}
	}
}

// captureStderr returns what fn writes to os.Stderr.
func captureStderr(t *testing.T, fn func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = w
	out := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		out <- string(b)
	}()
	fn()
	os.Stderr = saved
	w.Close()
	return <-out
}
