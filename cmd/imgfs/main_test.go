package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imgfs/imgfs/internal/testregistry"
)

// The end-to-end tests run this test binary as the imgfs command: with
// IMGFS_RUN_MAIN set it is imgfs, so no separate build is needed.
func TestMain(m *testing.M) {
	if os.Getenv("IMGFS_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	code := m.Run()
	shared.close()
	os.Exit(code)
}

// commandTimeout bounds every command a test runs: imgfs must never hang.
const commandTimeout = 2 * time.Minute

type result struct {
	stdout, stderr string
	code           int
}

// imgfs runs the command with args and the given extra environment.
func imgfs(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return imgfsWithStdin(t, env, "", args...)
}

// imgfsWithStdin runs the command with stdin as its standard input.
func imgfsWithStdin(t *testing.T, env []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "IMGFS_RUN_MAIN=1"), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("imgfs %v did not finish within %s\nstderr: %s", args, commandTimeout, stderr.String())
	}
	code := 0
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatalf("imgfs %v: %v", args, err)
	}
	return result{stdout.String(), stderr.String(), code}
}

// mustImgfs runs imgfs and fails the test unless it exits 0.
func mustImgfs(t *testing.T, args ...string) result {
	t.Helper()
	r := imgfs(t, nil, args...)
	if r.code != 0 {
		t.Fatalf("imgfs %v: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return r
}

// wantError checks a failure: a non-zero exit and a single stderr line
// containing each of parts.
func wantError(t *testing.T, r result, code int, parts ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit %d, want %d; stderr: %s", r.code, code, r.stderr)
	}
	msg := strings.TrimSpace(r.stderr)
	if strings.Count(msg, "\n") != 0 {
		t.Errorf("error is not one line:\n%s", msg)
	}
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("error %q does not mention %q", msg, p)
		}
	}
}

// fixtures is one registry with the standard test images, shared by the
// package's tests because pushing them takes a while.
type fixtures struct {
	once  sync.Once
	err   error
	reg   *testregistry.Registry
	three map[bool]testregistry.Pushed // by docker media types
	multi testregistry.MultiPlatform
}

var shared fixtures

func (f *fixtures) close() {
	if f.reg != nil {
		f.reg.Close()
		os.RemoveAll(f.reg.Dir())
	}
}

func registryFixtures(t *testing.T) *fixtures {
	t.Helper()
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "imgfs-registry-")
		if err != nil {
			shared.err = err
			return
		}
		if shared.reg, shared.err = testregistry.StartProcess(dir); shared.err != nil {
			return
		}
		shared.three = map[bool]testregistry.Pushed{}
		for _, docker := range []bool{false, true} {
			repo := map[bool]string{false: "three/oci", true: "three/docker"}[docker]
			if shared.three[docker], shared.err = shared.reg.PushImage(repo, "v1", testregistry.ThreeLayerImage(docker)); shared.err != nil {
				return
			}
		}
		shared.multi, shared.err = shared.reg.PushMultiPlatform("multi", "v1", false)
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return &shared
}

// verifyBlobs checks that every file in dir/blobs/sha256 hashes to its
// name, and returns the names.
func verifyBlobs(t *testing.T, dir string) map[string]bool {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, e := range entries {
		f, err := os.Open(filepath.Join(dir, "blobs", "sha256", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			t.Fatalf("read blob %s: %v", e.Name(), err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != e.Name() {
			t.Errorf("blob %s hashes to %s", e.Name(), got)
		}
		names["sha256:"+e.Name()] = true
	}
	return names
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func describe(r result) string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}
