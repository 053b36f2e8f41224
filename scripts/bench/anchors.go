package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// errNotInstalled marks an anchor tool that is not installed: the bench
// reports it as n/a with an install hint instead of failing.
var errNotInstalled = errors.New("not installed")

// need returns errNotInstalled, with the Debian package to install, when
// one of the programs is not on PATH.
func need(pkg string, programs ...string) error {
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			return fmt.Errorf("%s %w (apt-get install %s, or IMGFS_BENCH=1 scripts/setup.sh)", p, errNotInstalled, pkg)
		}
	}
	return nil
}

// curl times `curl -o FILE URL` of blobs from repo on host, one file per
// blob and all in one curl process (so one connection, reused), into a new
// directory on the same disk as the caches. With durable set the time
// includes `sync FILE...` after curl, the fsync a store that must survive
// a crash pays for. The files are removed after.
func (b *bench) curl(host, repo string, durable bool, blobs ...ocispec.Descriptor) (time.Duration, error) {
	u, _, err := b.curlUsage(host, repo, durable, blobs...)
	return u.wall, err
}

// curlUsage is curl, with curl's CPU time too (sync's is not counted), and
// the machine's CPU over curl's run alone.
func (b *bench) curlUsage(host, repo string, durable bool, blobs ...ocispec.Descriptor) (usage, *cpuWindow, error) {
	dir, err := b.dir("curl")
	if err != nil {
		return usage{}, nil, err
	}
	defer os.RemoveAll(dir)
	args := []string{"-sSf"}
	var files []string
	for i, d := range blobs {
		files = append(files, filepath.Join(dir, fmt.Sprintf("blob%d", i)))
		args = append(args, "-o", files[i], fmt.Sprintf("http://%s/v2/%s/blobs/%s", host, repo, d.Digest))
	}
	win := startCPUWindow(b.reg.Pid())
	u, err := runCmdUsage(b.ctx, transferTimeout, nil, "curl", args...)
	err = errors.Join(err, win.stop())
	if err != nil || !durable {
		return u, win, err
	}
	synced, err := runCmd(b.ctx, transferTimeout, nil, "sync", files...)
	u.wall += synced
	return u, win, err
}

// skopeo times `skopeo copy docker://REF oci:DIR:TAG` into a new directory
// and removes it after.
func (b *bench) skopeo(ref string) (time.Duration, error) {
	if err := need("skopeo", "skopeo"); err != nil {
		return 0, err
	}
	dir, err := b.dir("skopeo")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	// --insecure-policy: the bench does not depend on the machine's
	// /etc/containers/policy.json.
	return runCmd(b.ctx, transferTimeout, nil, "skopeo", "--insecure-policy", "copy", "--src-tls-verify=false",
		"docker://"+ref, "oci:"+filepath.Join(dir, "layout")+":"+tag)
}

// ctrFetch times `ctr content fetch --plain-http REF` against a containerd
// of its own, started on a private socket with fresh root and state
// directories so every fetch is cold, and stopped after.
func (b *bench) ctrFetch(ref string) (time.Duration, error) {
	if err := need("containerd", "containerd", "ctr"); err != nil {
		return 0, err
	}
	c, err := b.startContainerd()
	if err != nil {
		return 0, err
	}
	defer c.stop()
	return runCmd(b.ctx, transferTimeout, nil, "ctr", "--address", c.socket, "--namespace", "bench",
		"content", "fetch", "--plain-http", ref)
}

// containerd is a containerd process private to the bench.
type containerd struct {
	cmd    *exec.Cmd
	dir    string
	socket string
	exited chan struct{}
	log    bytes.Buffer
}

// containerdStartTimeout bounds the wait for containerd's socket; it
// answers in about 0.1 s.
const containerdStartTimeout = 20 * time.Second

// startContainerd starts containerd with a config that keeps its socket,
// root, state and plugin directories in a new directory, and waits until
// ctr can talk to it. The CRI plugin and the snapshotters that need special
// filesystems are disabled: content fetch uses none of them.
func (b *bench) startContainerd() (*containerd, error) {
	dir, err := b.dir("containerd")
	if err != nil {
		return nil, err
	}
	c := &containerd{dir: dir, socket: filepath.Join(dir, "c.sock"), exited: make(chan struct{})}
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]
[grpc]
  address = %q
[ttrpc]
  address = %q
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.socket, c.socket+".ttrpc", filepath.Join(dir, "opt"))
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c.cmd = exec.Command("containerd", "--config", cfgPath)
	c.cmd.Stdout = &c.log
	c.cmd.Stderr = &c.log
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start containerd: %w", err)
	}
	go func() {
		c.cmd.Wait()
		close(c.exited)
	}()
	err = waitFor(b.ctx, containerdStartTimeout, "containerd answering on "+c.socket, func() bool {
		select {
		case <-c.exited:
			return true
		default:
		}
		_, err := runCmd(b.ctx, 5*time.Second, nil, "ctr", "--address", c.socket, "version")
		return err == nil
	})
	select {
	case <-c.exited:
		err = fmt.Errorf("containerd exited during start-up%s", tailOf(c.log.String()))
	default:
	}
	if err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// stop terminates containerd (SIGTERM, then SIGKILL after 10 s) and removes
// its directory.
func (c *containerd) stop() {
	defer os.RemoveAll(c.dir)
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		return
	case <-time.After(10 * time.Second):
	}
	c.cmd.Process.Kill()
	<-c.exited
}

// toolVersions records the versions of the anchor tools for the report.
func toolVersions(ctx context.Context) map[string]string {
	versions := map[string]string{}
	for name, args := range map[string][]string{
		"curl":            {"curl", "--version"},
		"skopeo":          {"skopeo", "--version"},
		"containerd":      {"containerd", "--version"},
		"docker-registry": {"docker-registry", "--version"},
		"cat":             {"cat", "--version"},
	} {
		var out bytes.Buffer
		if _, err := runCmd(ctx, 10*time.Second, &out, args[0], args[1:]...); err != nil {
			versions[name] = "n/a"
			continue
		}
		first, _, _ := strings.Cut(out.String(), "\n")
		versions[name] = strings.TrimSpace(first)
	}
	return versions
}
