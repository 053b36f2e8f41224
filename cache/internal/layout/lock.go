package layout

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// Processes sharing a cache coordinate with flock(2), which the kernel
// drops when a process dies, so a lock never outlives its holder.

// TryLock takes an exclusive lock on the file at path, creating it. It
// returns nil, nil when another holder has it. A lock file is removed by
// its holder, so after locking the open file must still be the one at
// path; otherwise the lock is on an unlinked file and it tries again.
func TryLock(path string) (*os.File, error) {
	for range 3 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, err
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, nil
			}
			return nil, err
		}
		if sameFile(f, path) {
			return f, nil
		}
		f.Close()
	}
	return nil, nil
}

func sameFile(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}

// UnlockRemove removes a lock file that f, its lock, holds, and releases
// it.
func UnlockRemove(f *os.File) {
	os.Remove(f.Name())
	f.Close()
}

// CreateLockedTemp creates a new file in dir, named by pattern as
// os.CreateTemp does, mode 0600 whatever the umask, and locked, so that
// the sweep at open never removes it while this process lives.
func CreateLockedTemp(dir, pattern string) (*os.File, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

// RemoveIfUnlocked removes path if no live process holds a lock on it.
func RemoveIfUnlocked(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		return false
	}
	return os.Remove(path) == nil
}

// Held reports whether a live process holds a lock on the file at path.
// The probe takes a shared lock for an instant, which a live holder of an
// exclusive lock never lets happen.
func Held(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return true, nil
		}
		return false, err
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false, nil
}
