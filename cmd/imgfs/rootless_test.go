package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/imgfs/imgfs/internal/testfuse"
	"github.com/imgfs/imgfs/internal/testregistry"
)

// unprivileged is a fresh non-root user the tests create, with a home in a
// temporary directory and a copy of this test binary it may run.
type unprivileged struct {
	name     string
	uid, gid uint32
	home     string
	bin      string
}

// newUnprivileged adds a system user for the test and removes it, and its
// home, when the test ends.
func newUnprivileged(t *testing.T) unprivileged {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("creating an unprivileged user needs root")
	}
	u := unprivileged{name: fmt.Sprintf("imgfs-rl-%d", os.Getpid())}
	home, err := os.MkdirTemp("", "imgfs-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	u.home = home
	run(t, "useradd", "--system", "--no-create-home", "--home-dir", home, "--shell", "/usr/sbin/nologin", "--user-group", u.name)
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", u.name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v\n%s", u.name, err, out)
		}
		os.RemoveAll(home)
	})
	for _, id := range []struct {
		flag string
		dst  *uint32
	}{{"-u", &u.uid}, {"-g", &u.gid}} {
		n, err := strconv.ParseUint(strings.TrimSpace(run(t, "id", id.flag, u.name)), 10, 32)
		if err != nil {
			t.Fatal(err)
		}
		*id.dst = uint32(n)
	}
	// The test binary lives where only root can reach it: copy it.
	u.bin = filepath.Join(home, "imgfs")
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(u.bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, int(u.uid), int(u.gid)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	return u
}

// dir makes a directory in the user's home, owned by the user.
func (u unprivileged) dir(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(u.home, name)
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, int(u.uid), int(u.gid)); err != nil {
		t.Fatal(err)
	}
	return p
}

// env is the user's whole environment: nothing of root's leaks in.
func (u unprivileged) env(path string) []string {
	return []string{"IMGFS_RUN_MAIN=1", "HOME=" + u.home, "XDG_CACHE_HOME=" + filepath.Join(u.home, ".cache"), "PATH=" + path}
}

const standardPath = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"

// run runs name (the imgfs copy when name is "imgfs") as the user.
func (u unprivileged) run(t *testing.T, path, name string, args ...string) result {
	t.Helper()
	if name == "imgfs" {
		name = u.bin
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = u.env(path)
	cmd.Dir = u.home
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: u.uid, Gid: u.gid, Groups: []uint32{}}}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %v as %s did not finish within %s\nstderr: %s", name, args, u.name, commandTimeout, stderr.String())
	}
	code := 0
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v as %s: %v", name, args, u.name, err)
	}
	return result{stdout.String(), stderr.String(), code}
}

func (u unprivileged) mustRun(t *testing.T, name string, args ...string) result {
	t.Helper()
	r := u.run(t, standardPath, name, args...)
	if r.code != 0 {
		t.Fatalf("%s %v as %s: %s", name, args, u.name, describe(r))
	}
	return r
}

// withFuseMode sets /dev/fuse to mode for the rest of the test, and puts
// the original mode back when it ends, whatever happens.
func withFuseMode(t *testing.T, mode fs.FileMode) {
	t.Helper()
	fi, err := os.Stat("/dev/fuse")
	if err != nil {
		t.Fatal(err)
	}
	orig := fi.Mode().Perm()
	t.Cleanup(func() {
		if err := os.Chmod("/dev/fuse", orig); err != nil {
			t.Errorf("restore /dev/fuse to %o: %v", orig, err)
		}
	})
	if err := os.Chmod("/dev/fuse", mode); err != nil {
		t.Fatal(err)
	}
}

// TestRootlessMount runs the whole flow as a non-root user, through
// fusermount3, with /dev/fuse 0666 as stock Debian has it: mount with the
// default cache under $XDG_CACHE_HOME, a lazy read, a full verified read,
// and imgfs unmount. (With 0600 fusermount3 cannot open the device for the
// user: see TestRootlessMountRefusals.)
func TestRootlessMount(t *testing.T) {
	testfuse.Require(t)
	fx := registryFixtures(t)
	u := newUnprivileged(t)
	large := fx.three[false].Layers[2]
	proxy := testregistry.StartProxy(t, fx.reg.Host())
	ref := proxy.Host() + "/three/oci:v1"
	cache := filepath.Join(u.home, ".cache", "imgfs")

	withFuseMode(t, 0o666)
	mnt := u.dir(t, "mnt")
	r := u.mustRun(t, "imgfs", "mount", "--background", ref, mnt)
	pid := backgroundPID(t, r.stdout)
	t.Cleanup(func() {
		if isMounted(mnt) {
			unix.Unmount(mnt, unix.MNT_DETACH)
		}
	})
	if opts, _ := mountOptions(mnt); !strings.Contains(opts, "user_id="+strconv.Itoa(int(u.uid))) {
		t.Errorf("mount options %q do not name the user %d", opts, u.uid)
	}

	// Lazy: the first 4 KiB of a 32 MiB layer pull a little of it.
	blob := filepath.Join(mnt, "blobs", "sha256", large.Digest.Encoded())
	proxy.ResetCounters()
	u.mustRun(t, "dd", "if="+blob, "of=/dev/null", "bs=4096", "count=1", "status=none")
	if got := proxy.BlobBytes(); got == 0 || got > 4<<20 {
		t.Errorf("reading 4 KiB pulled %d bytes, want between 1 and 4 MiB", got)
	}
	sum := strings.Fields(u.mustRun(t, "sha256sum", blob).stdout)
	if len(sum) == 0 || "sha256:"+sum[0] != large.Digest.String() {
		t.Errorf("sha256sum through the mount = %v, want %s", sum, large.Digest)
	}
	cached := filepath.Join(cache, "blobs", "sha256", large.Digest.Encoded())
	waitFor(t, "the layer to be committed to the user's cache", func() bool {
		_, err := os.Stat(cached)
		return err == nil
	})
	if fi, err := os.Stat(cached); err == nil && fi.Sys().(*syscall.Stat_t).Uid != u.uid {
		t.Errorf("cached layer owned by uid %d, want the user's %d", fi.Sys().(*syscall.Stat_t).Uid, u.uid)
	}

	u.mustRun(t, "imgfs", "unmount", mnt)
	if isMounted(mnt) {
		t.Errorf("%s still mounted after imgfs unmount", mnt)
	}
	waitFor(t, "the mount's server to exit", func() bool { return syscall.Kill(pid, 0) != nil })
	logs, _ := filepath.Glob(filepath.Join(cache, "logs", "*"))
	for _, l := range logs {
		if !t.Failed() {
			break
		}
		data, _ := os.ReadFile(l)
		t.Logf("%s:\n%s", l, data)
	}
}

// TestRootlessMountRefusals: a user who cannot mount gets one line naming
// the fix, before anything is fetched.
func TestRootlessMountRefusals(t *testing.T) {
	testfuse.Require(t)
	fx := registryFixtures(t)
	u := newUnprivileged(t)
	ref := fx.reg.Reference("three/oci", "v1")

	mnt := u.dir(t, "mnt")

	// fusermount3 opens /dev/fuse as the user, so 0600 means no FUSE for
	// anyone but root; the check says so instead of fusermount3's exit code.
	withFuseMode(t, 0o600)
	r := u.run(t, standardPath, "imgfs", "mount", "--background", ref, mnt)
	wantError(t, r, 1, "FUSE is not allowed for this user", "chmod 0666 /dev/fuse")
	if out := u.fusermount(t, mnt); !strings.Contains(out, "failed to open /dev/fuse: Permission denied") {
		t.Errorf("fusermount3 itself, as the user with /dev/fuse 0600, says %q; want it refused", out)
	}

	withFuseMode(t, 0o666)
	r = u.run(t, "/nonexistent", "imgfs", "mount", ref, mnt)
	wantError(t, r, 1, "fusermount3 on PATH", "apt-get install fuse3")

	rootOwned := t.TempDir()
	if err := os.Chmod(rootOwned, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(rootOwned), 0o755); err != nil {
		t.Fatal(err)
	}
	r = u.run(t, standardPath, "imgfs", "mount", ref, rootOwned)
	wantError(t, r, 1, rootOwned, "not writable by this user")
}

// fusermount runs fusermount3 as the user the way go-fuse does, with a
// socket for the /dev/fuse descriptor in _FUSE_COMMFD, and returns what it
// printed. A mount it makes is detached at once.
func (u unprivileged) fusermount(t *testing.T, mnt string) string {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET, 0)
	if err != nil {
		t.Fatal(err)
	}
	local, remote := os.NewFile(uintptr(fds[0]), "local"), os.NewFile(uintptr(fds[1]), "remote")
	defer local.Close()
	defer remote.Close()
	cmd := exec.Command("fusermount3", "-o", "ro", mnt)
	cmd.Env = append(u.env(standardPath), "_FUSE_COMMFD=3")
	cmd.ExtraFiles = []*os.File{remote}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: u.uid, Gid: u.gid, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	if err == nil {
		unix.Unmount(mnt, unix.MNT_DETACH)
	}
	return string(out)
}
