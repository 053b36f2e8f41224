package fusefs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Kinds of mount point error. The errors returned wrap one of these, so
// tests can tell them apart, and read as one line naming the path and the
// fix.
var (
	errMountpointMissing = errors.New("mountpoint does not exist")
	errNotDirectory      = errors.New("mountpoint is not a directory")
	errNotWritable       = errors.New("mountpoint is not writable")
	errNotEmpty          = errors.New("mountpoint is not empty")
	errMounted           = errors.New("already mounted")
	errStaleMount        = errors.New("stale mount")
	errNotMounted        = errors.New("not mounted")
	errNotImgfs          = errors.New("not an imgfs mount")
	errNoFuse            = errors.New("FUSE unavailable")
)

// fsType is the type imgfs mounts show in /proc/mounts: "fuse." plus the
// Name mount option.
const fsType = "fuse.imgfs"

// pathError is a one-line message for a person that still matches its
// sentinel, and the underlying cause if any, with errors.Is.
type pathError struct {
	kind  error
	cause error
	msg   string
}

func (e *pathError) Error() string   { return e.msg }
func (e *pathError) Unwrap() []error { return []error{e.kind, e.cause} }

// CheckMountpoint reports whether path can take a new mount: it must be an
// existing, empty directory that is not already a mount point. A mount
// whose daemon died is reported as stale (errStaleMount), with the command
// that clears it.
func CheckMountpoint(path string) error {
	m, mounted, err := findMount(path)
	if err != nil {
		return err
	}
	if mounted {
		if isStale(path) {
			return &pathError{kind: errStaleMount, msg: fmt.Sprintf("mountpoint %s is a stale %s mount: run imgfs unmount %s", path, friendlyType(m.fsType), path)}
		}
		if m.fsType == fsType {
			return &pathError{kind: errMounted, msg: fmt.Sprintf("mountpoint %s is already mounted (imgfs %s): run imgfs unmount %s first", path, m.source, path)}
		}
		return &pathError{kind: errMounted, msg: fmt.Sprintf("mountpoint %s is already mounted (%s %s): choose another directory", path, m.fsType, m.source)}
	}

	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &pathError{kind: errMountpointMissing, cause: err, msg: fmt.Sprintf("mountpoint %s does not exist: create it with mkdir -p %s", path, path)}
	case errors.Is(err, unix.ENOTCONN), errors.Is(err, unix.ECONNABORTED):
		return &pathError{kind: errStaleMount, cause: err, msg: fmt.Sprintf("mountpoint %s is inside a stale FUSE mount: unmount that first", path)}
	case err != nil:
		return fmt.Errorf("mountpoint %s: %w", path, err)
	case !fi.IsDir():
		return &pathError{kind: errNotDirectory, msg: fmt.Sprintf("mountpoint %s is not a directory", path)}
	}

	d, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("mountpoint %s: %w", path, err)
	}
	defer d.Close()
	if _, err := d.Readdirnames(1); err == nil {
		return &pathError{kind: errNotEmpty, msg: fmt.Sprintf("mountpoint %s is not empty: use an empty directory", path)}
	} else if err != io.EOF {
		return fmt.Errorf("mountpoint %s: %w", path, err)
	}
	// fusermount3 mounts only on a directory the user may write to.
	if os.Geteuid() != 0 {
		if err := unix.Access(path, unix.W_OK); err != nil {
			return &pathError{kind: errNotWritable, cause: err, msg: fmt.Sprintf("mountpoint %s is not writable by this user, and fusermount3 mounts only on such directories: use a directory you own", path)}
		}
	}
	return nil
}

func friendlyType(t string) string {
	if t == fsType {
		return "imgfs"
	}
	return t
}

// CheckFuseDevice reports whether this process can mount FUSE filesystems,
// with the fix in one line if not.
//
// Root mounts directly and opens /dev/fuse itself. Other users mount
// through fusermount3, which is setuid root but opens /dev/fuse with the
// user's file system uid (it drops privileges first, so that the device's
// mode and group decide who may use FUSE): with /dev/fuse 0600, as on some
// machines, fusermount3 fails with "failed to open /dev/fuse: Permission
// denied"; with stock Debian's 0666 it works. So opening the device here
// asks exactly what fusermount3 will ask.
func CheckFuseDevice() error {
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &pathError{kind: errNoFuse, cause: err, msg: "/dev/fuse does not exist: load the module with modprobe fuse (in a container, pass --device /dev/fuse)"}
	case errors.Is(err, fs.ErrPermission) && os.Geteuid() != 0:
		return &pathError{kind: errNoFuse, cause: err, msg: "FUSE is not allowed for this user: fusermount3 opens /dev/fuse as the user, who cannot read and write it: chmod 0666 /dev/fuse (Debian's default), or run as root"}
	case err != nil:
		return &pathError{kind: errNoFuse, cause: err, msg: fmt.Sprintf("/dev/fuse: %v", err)}
	}
	f.Close()
	if os.Geteuid() != 0 {
		return checkFusermount()
	}
	return nil
}

// checkFusermount reports whether fusermount3 (or fuse2's fusermount) is
// on PATH, owned by root and setuid, as a non-root mount fails otherwise.
func checkFusermount() error {
	bin, err := fusermount()
	if err != nil {
		return &pathError{kind: errNoFuse, cause: err, msg: "mounting as a non-root user needs fusermount3 on PATH: apt-get install fuse3, or run as root"}
	}
	var st unix.Stat_t
	if err := unix.Stat(bin, &st); err != nil {
		return &pathError{kind: errNoFuse, cause: err, msg: fmt.Sprintf("%s: %v", bin, err)}
	}
	if st.Uid != 0 || st.Mode&unix.S_ISUID == 0 {
		return &pathError{kind: errNoFuse, msg: fmt.Sprintf("%s is not setuid root, so it cannot mount for this user: chown root %s && chmod u+s %s, or run as root", bin, bin, bin)}
	}
	return nil
}

// UnmountResult says what Unmount found and did.
type UnmountResult int

const (
	// Unmounted: a live mount was unmounted.
	Unmounted UnmountResult = iota + 1
	// DetachedBusy: a live mount had open files and was detached lazily;
	// it goes away when the last one is closed.
	DetachedBusy
	// DetachedStale: the mount's daemon was gone and the mount was
	// detached.
	DetachedStale
)

func (r UnmountResult) String() string {
	switch r {
	case Unmounted:
		return "unmounted"
	case DetachedBusy:
		return "busy, detached lazily"
	case DetachedStale:
		return "stale, detached"
	}
	return "UnmountResult(" + strconv.Itoa(int(r)) + ")"
}

// Unmount unmounts the imgfs mount at path, live or stale. A live mount
// with open files is detached lazily. It refuses paths that are not mount
// points (errNotMounted) and mounts of other filesystems (errNotImgfs).
func Unmount(path string) (UnmountResult, error) {
	m, mounted, err := findMount(path)
	if err != nil {
		return 0, err
	}
	if !mounted {
		return 0, &pathError{kind: errNotMounted, msg: "not mounted: " + path}
	}
	if m.fsType != fsType {
		return 0, &pathError{kind: errNotImgfs, msg: fmt.Sprintf("%s is a %s mount, not imgfs: refusing to unmount it", path, m.fsType)}
	}
	if isStale(path) {
		if err := umount(m.mountPoint, unix.MNT_DETACH); err != nil {
			return 0, fmt.Errorf("unmount stale mount %s: %w", path, err)
		}
		return DetachedStale, nil
	}
	err = umount(m.mountPoint, 0)
	if errors.Is(err, unix.EBUSY) {
		if err := umount(m.mountPoint, unix.MNT_DETACH); err != nil {
			return 0, fmt.Errorf("unmount %s lazily: %w", path, err)
		}
		return DetachedBusy, nil
	}
	if err != nil {
		return 0, fmt.Errorf("unmount %s: %w", path, err)
	}
	return Unmounted, nil
}

// isStale probes a mount point with statfs, which fails with ENOTCONN once
// the daemon is gone (ECONNABORTED after an abort); stat may still answer
// from the attribute cache.
func isStale(path string) bool {
	var st unix.Statfs_t
	err := unix.Statfs(path, &st)
	return errors.Is(err, unix.ENOTCONN) || errors.Is(err, unix.ECONNABORTED)
}

// umount calls umount2, or as a non-root user fusermount3 -u (-z for
// MNT_DETACH).
func umount(path string, flags int) error {
	err := unix.Unmount(path, flags)
	if !errors.Is(err, unix.EPERM) || os.Geteuid() == 0 {
		return err
	}
	bin, ferr := fusermount()
	if ferr != nil {
		return err
	}
	args := []string{"-u", path}
	if flags&unix.MNT_DETACH != 0 {
		args = []string{"-u", "-z", path}
	}
	out, ferr := exec.Command(bin, args...).CombinedOutput()
	if ferr == nil {
		return nil
	}
	msg := strings.TrimSpace(string(out))
	if strings.Contains(msg, "busy") {
		return fmt.Errorf("%s: %w", msg, unix.EBUSY)
	}
	return fmt.Errorf("%s: %s", bin, msg)
}

func fusermount() (string, error) {
	if p, err := exec.LookPath("fusermount3"); err == nil {
		return p, nil
	}
	return exec.LookPath("fusermount")
}

// mountInfo is one line of /proc/self/mountinfo.
type mountInfo struct {
	dev, mountPoint, fsType, source string
}

// findMount looks path up in /proc/self/mountinfo; the last match is the
// visible mount. It first tries the path with only its parent's symlinks
// resolved, which does not touch the path itself: that may be a stale
// mount, or this process's own mount, and a request from a FUSE server to
// itself can hang if the server is killed meanwhile. Only if that finds
// nothing is the whole path resolved, for a mountpoint given as a symlink.
func findMount(path string) (mountInfo, bool, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return mountInfo{}, false, fmt.Errorf("read mount table: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return mountInfo{}, false, fmt.Errorf("mountpoint %s: %w", path, err)
	}
	near := abs
	if dir, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		near = filepath.Join(dir, filepath.Base(abs))
	}
	if m, ok := lookupMount(data, near); ok {
		return m, true, nil
	}
	if full, err := filepath.EvalSymlinks(abs); err == nil && full != near {
		if m, ok := lookupMount(data, full); ok {
			return m, true, nil
		}
	}
	return mountInfo{}, false, nil
}

// lookupMount returns the last mountinfo entry mounted at target.
func lookupMount(mountinfo []byte, target string) (mountInfo, bool) {
	var found mountInfo
	ok := false
	for line := range strings.Lines(string(mountinfo)) {
		m, good := parseMountInfo(strings.TrimSuffix(line, "\n"))
		if good && m.mountPoint == target {
			found, ok = m, true
		}
	}
	return found, ok
}

// parseMountInfo parses "id parent maj:min root mountpoint opts [optional...] - type source superopts".
func parseMountInfo(line string) (mountInfo, bool) {
	pre, post, ok := strings.Cut(line, " - ")
	f, g := strings.Fields(pre), strings.Fields(post)
	if !ok || len(f) < 5 || len(g) < 2 {
		return mountInfo{}, false
	}
	return mountInfo{dev: f[2], mountPoint: unescapeOctal(f[4]), fsType: g[0], source: unescapeOctal(g[1])}, true
}

// unescapeOctal undoes the kernel's \ooo escapes of space, tab, newline and
// backslash in mountinfo.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
