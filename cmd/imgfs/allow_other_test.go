package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgfs/imgfs/internal/testfuse"
)

// TestMountIsPrivateByDefault checks that a mount is made without
// allow_other unless --allow-other is given, both in the mount table and
// in what another user can do.
func TestMountIsPrivateByDefault(t *testing.T) {
	testfuse.Require(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to act as another user")
	}
	fx := registryFixtures(t)
	ref := fx.reg.Reference("three/oci", "v1")
	cacheDir := t.TempDir()
	for _, allow := range []bool{false, true} {
		mnt := reachableMountpoint(t)
		args := []string{"mount", "--background", "--cache-dir", cacheDir}
		if allow {
			args = append(args, "--allow-other")
		}
		mustImgfs(t, append(args, ref, mnt)...)
		t.Cleanup(func() { imgfs(t, nil, "unmount", mnt) })

		opts, ok := mountOptions(mnt)
		if !ok {
			t.Fatalf("%s is not in /proc/self/mountinfo", mnt)
		}
		if got := strings.Contains(","+opts+",", ",allow_other,"); got != allow {
			t.Errorf("--allow-other=%v: mount options %q", allow, opts)
		}
		out, err := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "cat", filepath.Join(mnt, "index.json")).CombinedOutput()
		if allow && err != nil {
			t.Errorf("--allow-other: another user cannot read the mount: %v %s", err, out)
		}
		if !allow && (err == nil || !strings.Contains(string(out), "Permission denied")) {
			t.Errorf("by default another user reads the mount: %v %s", err, out)
		}
	}
}

// reachableMountpoint returns an empty directory that every user can reach,
// unlike t.TempDir's, which are 0700.
func reachableMountpoint(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "imgfs-mnt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
