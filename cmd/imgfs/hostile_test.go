package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/imgfs/imgfs/internal/testfuse"
	"github.com/imgfs/imgfs/internal/testregistry"
)

// The hostile tests run imgfs against a registry that lies (see
// testregistry.InstallHostileScenarios) and check that a lie costs at
// most a clean error: exit 1, a short message, no panic, no hang, and
// nothing written outside the cache and the mountpoint.

// hostileFetchTimeout is the --fetch-timeout the hostile tests pass.
const hostileFetchTimeout = 3 * time.Second

// hangGuard is added to --fetch-timeout to decide that imgfs hangs. It is a
// hang detector, not a performance assertion: a clean error comes in a
// fraction of it.
const hangGuard = 30 * time.Second

// victimContent is what the traversal scenario's victim holds; its size is
// the size the lying descriptor claims.
const victimContent = "a file outside the cache that imgfs must never touch\n"

// hostileBed is a hostile registry and a victim file in a directory that
// the tests snapshot; each run gets its own cache and mountpoint under it.
type hostileBed struct {
	reg       *testregistry.Hostile
	parent    string
	victim    string
	victimMod time.Time
	scenarios []testregistry.HostileScenario
}

func newHostileBed(t *testing.T) *hostileBed {
	t.Helper()
	b := &hostileBed{reg: testregistry.StartHostile(t), parent: t.TempDir()}
	b.victim = filepath.Join(b.parent, "victim")
	if err := os.WriteFile(b.victim, []byte(victimContent), 0o644); err != nil {
		t.Fatal(err)
	}
	// An mtime in the past, so that any write shows even within the
	// filesystem's timestamp granularity.
	b.victimMod = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(b.victim, b.victimMod, b.victimMod); err != nil {
		t.Fatal(err)
	}
	var err error
	if b.scenarios, err = testregistry.InstallHostileScenarios(b.reg, b.victim); err != nil {
		t.Fatal(err)
	}
	return b
}

// runDir makes the directory for one run: its cache and mountpoint are
// the only places the run may write.
func (b *hostileBed) runDir(t *testing.T, name string) (dir, cacheDir, mnt string) {
	t.Helper()
	dir, err := os.MkdirTemp(b.parent, "run-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	cacheDir, mnt = filepath.Join(dir, "cache"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, cacheDir, mnt
}

// snapshot records every path under the bed's parent that a run must not
// change: the victim and other top-level files, and the run's own
// directory except its cache and mountpoint. Other runs' directories are
// left out so that runs can go in parallel.
func (b *hostileBed) snapshot(t *testing.T, runDir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(b.parent, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // a sibling run's file, gone meanwhile
			}
			return err
		}
		rel, _ := filepath.Rel(b.parent, path)
		if d.IsDir() && path != b.parent {
			if strings.HasPrefix(rel, "run-") && !strings.Contains(rel, "/") && path != runDir {
				return fs.SkipDir
			}
			if path == filepath.Join(runDir, "cache") || path == filepath.Join(runDir, "mnt") {
				return fs.SkipDir
			}
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		// A directory's size and mtime change with any entry added, by
		// this run or a sibling; what matters is the entries themselves.
		state := info.Mode().String()
		if !d.IsDir() {
			state += fmt.Sprintf(" %d %d", info.Size(), info.ModTime().UnixNano())
		}
		if info.Mode().IsRegular() {
			data, _ := os.ReadFile(path)
			state += " " + fmt.Sprintf("%x", sha256.Sum256(data))
		}
		out[rel] = state
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", b.parent, err)
	}
	return out
}

// checkUntouched compares snapshots and the victim.
func (b *hostileBed) checkUntouched(t *testing.T, before, after map[string]string) {
	t.Helper()
	for path, st := range after {
		if was, ok := before[path]; !ok {
			t.Errorf("created outside the cache and mountpoint: %s (%s)", filepath.Join(b.parent, path), st)
		} else if was != st {
			t.Errorf("changed outside the cache and mountpoint: %s\n  before: %s\n  after:  %s", filepath.Join(b.parent, path), was, st)
		}
	}
	for path := range before {
		if _, ok := after[path]; !ok {
			t.Errorf("removed outside the cache and mountpoint: %s", filepath.Join(b.parent, path))
		}
	}
	data, err := os.ReadFile(b.victim)
	info, serr := os.Stat(b.victim)
	if err != nil || serr != nil || string(data) != victimContent || !info.ModTime().Equal(b.victimMod) {
		t.Errorf("the victim %s was touched: content %q, mtime %v, errors %v %v", b.victim, data, info.ModTime(), err, serr)
	}
}

// guardedResult is how one imgfs command ended.
type guardedResult struct {
	result
	elapsed time.Duration
	hung    bool
}

// imgfsCommand returns a command running this binary as imgfs, in its own
// process group so that a hang can be ended with everything it started.
func imgfsCommand(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "IMGFS_RUN_MAIN=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// killGroup ends a command started by imgfsCommand and its children.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

// runGuarded runs imgfs and kills it if it outlives limit.
func runGuarded(t *testing.T, limit time.Duration, args ...string) guardedResult {
	t.Helper()
	cmd := imgfsCommand(args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(limit, func() { killGroup(cmd) })
	err := cmd.Wait()
	hung := !timer.Stop()
	r := guardedResult{result: result{stdout: stdout.String(), stderr: stderr.String()}, elapsed: time.Since(start), hung: hung}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		r.code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatalf("imgfs %v: %v", args, err)
	}
	return r
}

// checkCleanExit checks what every hostile run must show: no hang, the
// exit code, a short error and no panic.
func checkCleanExit(t *testing.T, what string, r guardedResult, codes ...int) {
	t.Helper()
	if r.hung {
		t.Fatalf("%s hung: killed after %v (--fetch-timeout %v)\nstderr:\n%s", what, r.elapsed.Round(time.Millisecond), hostileFetchTimeout, tailLines(r.stderr, 10))
	}
	ok := false
	for _, c := range codes {
		ok = ok || r.code == c
	}
	if !ok {
		t.Errorf("%s: exit %d, want %v\nstderr:\n%s", what, r.code, codes, tailLines(r.stderr, 10))
	}
	checkNoPanic(t, what, r.result)
	if r.code != 0 {
		if lines := strings.Count(strings.TrimSpace(r.stderr), "\n") + 1; lines > 3 {
			t.Errorf("%s: error takes %d lines of stderr, want at most 3:\n%s", what, lines, tailLines(r.stderr, 10))
		}
	}
	t.Logf("%s: exit %d after %v: %s", what, r.code, r.elapsed.Round(time.Millisecond), strings.TrimSpace(tailLines(r.stderr, 3)))
}

func checkNoPanic(t *testing.T, what string, r result) {
	t.Helper()
	out := r.stdout + r.stderr
	if strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
		t.Errorf("%s: output shows a panic:\n%s", what, tailLines(out, 20))
	}
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// checkCacheBlobs checks that every file under cacheDir/blobs is a blob of
// a known algorithm that hashes to its name, and returns the digests. A
// missing cache is fine: imgfs may fail before creating it.
func checkCacheBlobs(t *testing.T, cacheDir string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	root := filepath.Join(cacheDir, "blobs")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		alg, name, _ := strings.Cut(rel, "/")
		var h hash.Hash
		switch alg {
		case "sha256":
			h = sha256.New()
		case "sha512":
			h = sha512.New()
		default:
			t.Errorf("stray file in blobs/: %s", rel)
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed meanwhile, e.g. by a repair
			}
			return err
		}
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return err
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != name {
			t.Errorf("wrong blob in the cache: blobs/%s hashes to %s", rel, got)
		}
		names[alg+":"+name] = true
		return nil
	})
	if err != nil {
		t.Errorf("walk %s: %v", root, err)
	}
	return names
}

// hostileScenarioNames lists the scenarios, from a bed that is then
// closed: each run gets a bed of its own, so that what one run does to its
// victim cannot show in another's.
func hostileScenarioNames(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, s := range newHostileBed(t).scenarios {
		names = append(names, s.Name)
	}
	return names
}

// scenario returns the bed's scenario of that name.
func (b *hostileBed) scenario(t *testing.T, name string) testregistry.HostileScenario {
	t.Helper()
	for _, s := range b.scenarios {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no hostile scenario %q", name)
	return testregistry.HostileScenario{}
}

func TestHostileFetch(t *testing.T) {
	for _, name := range hostileScenarioNames(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := newHostileBed(t)
			s := b.scenario(t, name)
			dir, cacheDir, _ := b.runDir(t, s.Name)
			before := b.snapshot(t, dir)
			r := runGuarded(t, hostileFetchTimeout+hangGuard,
				"fetch", "--cache-dir", cacheDir, "--fetch-timeout", hostileFetchTimeout.String(), s.Reference(b.reg))
			what := "imgfs fetch (" + s.Lie + ")"
			switch s.Outcome {
			case testregistry.MustFail:
				checkCleanExit(t, what, r, 1)
			case testregistry.MustSucceed:
				checkCleanExit(t, what, r, 0)
			case testregistry.MayRefuse:
				checkCleanExit(t, what, r, 0, 1)
			}
			blobs := checkCacheBlobs(t, cacheDir)
			if r.code == 0 && !r.hung {
				if !blobs[s.Layer.Digest.String()] {
					t.Errorf("fetch exited 0 but the layer %s is not in the cache", s.Layer.Digest)
				}
			}
			if s.MaxRequests > 0 {
				if n := b.reg.Requests(s.Repo); n > s.MaxRequests {
					t.Errorf("fetch sent %d requests for %s, want at most %d: the walk visits a digest more than once", n, s.Repo, s.MaxRequests)
				}
			}
			b.checkUntouched(t, before, b.snapshot(t, dir))
		})
	}
}

func TestHostileMount(t *testing.T) {
	testfuse.Require(t)
	for _, name := range hostileScenarioNames(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := newHostileBed(t)
			s := b.scenario(t, name)
			dir, cacheDir, mnt := b.runDir(t, s.Name)
			t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
			before := b.snapshot(t, dir)
			what := "imgfs mount (" + s.Lie + ")"
			m := startForegroundMount(t, mnt, hostileFetchTimeout+hangGuard,
				"--cache-dir", cacheDir, "--fetch-timeout", hostileFetchTimeout.String(), s.Reference(b.reg))
			if m.mounted {
				switch s.Outcome {
				case testregistry.MustFail:
					t.Errorf("%s: mounted; want exit 1 before mounting", what)
				default:
					checkLayerThroughMount(t, mnt, s)
				}
				if s.MaxRequests > 0 {
					if n := b.reg.Requests(s.Repo); n > s.MaxRequests {
						t.Errorf("mount sent %d requests for %s, want at most %d: the walk visits a digest more than once", n, s.Repo, s.MaxRequests)
					}
				}
				m.stop(t)
				checkCleanExit(t, what+" after SIGTERM", m.res, 0)
			} else {
				codes := []int{1}
				if s.Outcome == testregistry.MustSucceed {
					codes = []int{0} // it exited without mounting: a failure
				}
				checkCleanExit(t, what, m.res, codes...)
				if s.Outcome == testregistry.MustSucceed {
					t.Errorf("%s: exited without mounting", what)
				}
			}
			if isMounted(mnt) {
				t.Errorf("%s: %s is still mounted after imgfs exited", what, mnt)
			}
			checkCacheBlobs(t, cacheDir)
			b.checkUntouched(t, before, b.snapshot(t, dir))
		})
	}
}

// foregroundMount is an imgfs mount running in the foreground as a child
// of the test.
type foregroundMount struct {
	cmd            *exec.Cmd
	stdout, stderr *bytes.Buffer
	exited         chan struct{} // closed when the process has been waited for
	waitErr        error
	start          time.Time
	limit          time.Duration
	mounted        bool
	res            guardedResult
}

// startForegroundMount starts imgfs mount args... mnt and returns once it
// has mounted or exited, or kills it (a hang) after limit. When it exited,
// res holds how.
func startForegroundMount(t *testing.T, mnt string, limit time.Duration, args ...string) *foregroundMount {
	t.Helper()
	m := &foregroundMount{
		cmd:    imgfsCommand(append(append([]string{"mount"}, args...), mnt)...),
		stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{},
		exited: make(chan struct{}),
		start:  time.Now(), limit: limit,
	}
	m.cmd.Stdout, m.cmd.Stderr = m.stdout, m.stderr
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait for this PID, and only this one, whatever else the test runs.
	go func() { m.waitErr = m.cmd.Wait(); close(m.exited) }()
	t.Cleanup(func() {
		killGroup(m.cmd)
		select {
		case <-m.exited:
		case <-time.After(10 * time.Second):
		}
		unix.Unmount(mnt, unix.MNT_DETACH)
	})
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-m.exited:
			m.finish(t, m.waitErr, false)
			return m
		case <-deadline.C:
			killGroup(m.cmd)
			<-m.exited
			m.finish(t, m.waitErr, true)
			return m
		case <-tick.C:
			if isMounted(mnt) {
				m.mounted = true
				return m
			}
		}
	}
}

func (m *foregroundMount) finish(t *testing.T, err error, hung bool) {
	t.Helper()
	m.res = guardedResult{result: result{stdout: m.stdout.String(), stderr: m.stderr.String()}, elapsed: time.Since(m.start), hung: hung}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		m.res.code = exitErr.ExitCode()
		if status, ok := exitErr.Sys().(syscall.WaitStatus); ok && status.Signaled() && !hung {
			m.res.code = 128 + int(status.Signal())
		}
	} else if err != nil {
		t.Fatalf("imgfs mount: %v", err)
	}
}

// stop sends SIGTERM to a mounted imgfs and waits for it to exit, killing
// it after the guard.
func (m *foregroundMount) stop(t *testing.T) {
	t.Helper()
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
		m.finish(t, m.waitErr, false)
	case <-time.After(hangGuard):
		killGroup(m.cmd)
		<-m.exited
		m.finish(t, m.waitErr, true)
	}
}

// checkLayerThroughMount reads the scenario's layer through a mount that
// accepted it: a read either fails or returns exactly the bytes the
// registry serves, never other bytes, and never hangs.
func checkLayerThroughMount(t *testing.T, mnt string, s testregistry.HostileScenario) {
	t.Helper()
	path := filepath.Join(mnt, "blobs", s.Layer.Digest.Algorithm().String(), s.Layer.Digest.Encoded())
	ctx, cancel := context.WithTimeout(context.Background(), hostileFetchTimeout+hangGuard)
	defer cancel()
	cmd := exec.CommandContext(ctx, "cat", path)
	out := &limitedBuffer{max: int64(len(s.LayerBytes)) + 1<<20}
	cmd.Stdout = out
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Errorf("cat %s through the mount hung", path)
		return
	}
	got := out.Bytes()
	switch {
	case err == nil && !bytes.Equal(got, s.LayerBytes):
		t.Errorf("cat of the %s layer through the mount exited 0 with %d bytes that are not the layer's %d", s.Name, len(got), len(s.LayerBytes))
	case err != nil && !bytes.HasPrefix(s.LayerBytes, got):
		t.Errorf("cat of the %s layer through the mount failed (%v), after handing out %d wrong bytes", s.Name, err, len(got))
	case s.Outcome == testregistry.MustSucceed && err != nil:
		t.Errorf("cat of the layer through the mount: %v: %s", err, strings.TrimSpace(stderr.String()))
	case s.Layer.Size != int64(len(s.LayerBytes)) && err == nil:
		t.Errorf("cat of a layer claiming %d bytes returned the registry's %d and exit 0", s.Layer.Size, len(got))
	default:
		t.Logf("cat of the layer through the mount: %v, %d bytes", err, len(got))
	}
}

// limitedBuffer keeps at most max bytes and then refuses more, so that a
// read of a file claiming terabytes ends instead of filling memory.
type limitedBuffer struct {
	bytes.Buffer
	max int64
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if int64(b.Len()+len(p)) > b.max {
		return 0, errors.New("more bytes than the layer has")
	}
	return b.Buffer.Write(p)
}
