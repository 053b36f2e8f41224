package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// fetch times `imgfs fetch` of ref into a new cache and removes the cache.
func (b *bench) fetch(ref string) (time.Duration, error) {
	cache, err := b.dir("fetch-cache")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(cache)
	return runCmd(b.ctx, transferTimeout, nil, b.cfg.imgfs, "fetch", "--cache-dir", cache, "-q", ref)
}

// mount is a background imgfs mount started by the bench.
type mount struct {
	imgfs string
	dir   string        // the mountpoint
	pid   int           // the background server
	log   string        // the server's log file
	ready time.Duration // from running imgfs mount until index.json was read
	done  bool
}

// backgroundLine is what imgfs mount --background prints once ready.
var backgroundLine = regexp.MustCompile(`pid (\d+), log (.+)\)`)

// mount mounts ref with cache as its cache directory on a new mountpoint
// and returns once index.json has been read through it. ready measures that
// whole span, the time a user waits before the image can be used. The
// caller must close the mount, also on its own errors.
func (b *bench) mount(ref, cache string, extra ...string) (*mount, error) {
	mnt, err := b.dir("mnt")
	if err != nil {
		return nil, err
	}
	args := append([]string{"mount", "--background", "--cache-dir", cache}, extra...)
	args = append(args, ref, mnt)
	var out bytes.Buffer
	start := time.Now()
	if _, err := runCmd(b.ctx, mountTimeout, &out, b.cfg.imgfs, args...); err != nil {
		// A background server that outlived a timed-out imgfs mount
		// could still mount later: stop it and detach whatever it left.
		killServersOf(mnt)
		detachMountsUnder(mnt)
		os.Remove(mnt)
		return nil, err
	}
	_, readErr := os.ReadFile(filepath.Join(mnt, "index.json"))
	ready := time.Since(start)
	m := &mount{imgfs: b.cfg.imgfs, dir: mnt, ready: ready}
	match := backgroundLine.FindStringSubmatch(out.String())
	if match == nil {
		m.close()
		return nil, fmt.Errorf("imgfs mount: no pid in its output %q", out.String())
	}
	m.pid, _ = strconv.Atoi(match[1])
	m.log = match[2]
	if readErr != nil {
		err := m.fail(fmt.Errorf("read index.json of the new mount: %w", readErr))
		m.close()
		return nil, err
	}
	return m, nil
}

// blob returns the path of a blob in the mount.
func (m *mount) blob(d digest.Digest) string {
	return filepath.Join(m.dir, "blobs", d.Algorithm().String(), d.Encoded())
}

// fail adds the tail of the server's log to err. The log lives in the
// cache directory, which the bench removes, so its tail is kept here.
func (m *mount) fail(err error) error {
	b, rerr := os.ReadFile(m.log)
	if rerr != nil {
		return fmt.Errorf("%w (server log: %v)", err, rerr)
	}
	return fmt.Errorf("%w\n  server log %s:%s", err, m.log, tailOf(string(b)))
}

// close unmounts and waits for the server to exit, killing it (by pid, and
// only if it is still the server of this mountpoint) if it hangs. It is
// safe to call more than once; only the first call acts.
func (m *mount) close() error {
	if m.done {
		return nil
	}
	m.done = true
	defer os.Remove(m.dir)
	// The bench's context may already be cancelled: unmounting must happen
	// regardless.
	ctx := context.Background()
	_, err := runCmd(ctx, unmountTimeout, nil, m.imgfs, "unmount", m.dir)
	if m.pid == 0 || waitExit(m.pid, m.dir, 10*time.Second) {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: imgfs server %d for %s did not exit; killing it\n", m.pid, m.dir)
	syscall.Kill(m.pid, syscall.SIGKILL)
	waitExit(m.pid, m.dir, 5*time.Second)
	// Clear the mount the killed server left stale.
	runCmd(ctx, unmountTimeout, nil, m.imgfs, "unmount", m.dir)
	return fmt.Errorf("imgfs server for %s did not exit after unmount (log %s)", m.dir, m.log)
}

// waitExit waits until process pid, the server of mountpoint, is gone.
func waitExit(pid int, mountpoint string, timeout time.Duration) bool {
	return waitFor(context.Background(), timeout, "server exit", func() bool {
		return !isServerOf(pid, mountpoint)
	}) == nil
}

// isServerOf reports whether pid is alive and is an imgfs mount process
// for mountpoint (its arguments include "mount" and the mountpoint itself),
// which guards against signalling a recycled pid or a reader of the mount.
func isServerOf(pid int, mountpoint string) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err == nil && isZombie(stat) {
		return false
	}
	args := strings.Split(string(cmdline), "\x00")
	return slices.Contains(args, "mount") && slices.Contains(args, mountpoint)
}

// killServersOf kills every process serving mountpoint (see isServerOf).
func killServersOf(mountpoint string) {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		pid, err := strconv.Atoi(filepath.Base(p))
		if err == nil && pid != os.Getpid() && isServerOf(pid, mountpoint) {
			syscall.Kill(pid, syscall.SIGKILL)
			waitExit(pid, mountpoint, 5*time.Second)
		}
	}
}

// isZombie reports whether a /proc/PID/stat line is a zombie's.
func isZombie(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// statusBytes returns a "kB" field of the server's /proc/<pid>/status
// (VmRSS, VmHWM…) in bytes.
func (m *mount) statusBytes(field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", m.pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, m.pid)
}

// peakRSS returns the server's peak resident set size (VmHWM) in bytes.
func (m *mount) peakRSS() (int64, error) { return m.statusBytes("VmHWM") }

// cpuTime returns the CPU time (user+sys) the server has used so far.
func (m *mount) cpuTime() (time.Duration, error) { return processCPU(m.pid) }

// mountStats is the part of .imgfs/stats.json the bench reports.
type mountStats struct {
	Fusefs struct {
		Opens            int64 `json:"opens"`
		PassthroughOpens int64 `json:"passthrough_opens"`
	} `json:"fusefs"`
	Cache struct {
		FetchedBytes  int64 `json:"fetched_bytes"`
		RangeRequests int64 `json:"range_requests"`
	} `json:"cache"`
}

// stats reads the mount's .imgfs/stats.json.
func (m *mount) stats() (mountStats, error) {
	var s mountStats
	b, err := os.ReadFile(filepath.Join(m.dir, ".imgfs", "stats.json"))
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("stats.json: %w", err)
	}
	return s, nil
}

// cachedBlob returns the path a committed blob has in a cache directory.
func cachedBlob(cache string, d digest.Digest) string {
	return filepath.Join(cache, "blobs", d.Algorithm().String(), d.Encoded())
}

// waitCommitted waits until the cache holds the complete, verified blob.
func (b *bench) waitCommitted(cache string, d digest.Digest) error {
	path := cachedBlob(cache, d)
	return waitFor(b.ctx, commitTimeout, "blob committed to "+path, func() bool { return exists(path) })
}

// detachMountsUnder lazily unmounts every mount at or below dir, deepest
// first: the last line of defence against leaving a FUSE mount behind.
func detachMountsUnder(dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var under []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		if m := unescapeMountPath(fields[4]); m == dir || strings.HasPrefix(m, dir+"/") {
			under = append(under, m)
		}
	}
	slices.SortFunc(under, func(a, b string) int { return len(b) - len(a) })
	for _, m := range under {
		fmt.Fprintf(os.Stderr, "bench: detaching leftover mount %s\n", m)
		unix.Unmount(m, unix.MNT_DETACH)
	}
}

// unescapeMountPath undoes the octal escapes (\040 for a space, ...) of a
// path in /proc/self/mountinfo.
func unescapeMountPath(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
