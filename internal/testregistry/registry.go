package testregistry

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ErrNotInstalled is returned by StartProcess and StartMirror when the
// docker-registry binary is not on PATH. Callers in tests fail rather than
// skip on it: a skipped integration test is a test that silently stopped
// running.
var ErrNotInstalled = errors.New("docker-registry not installed: run scripts/setup.sh")

// RegistryBinary is the program StartProcess runs, looked up on PATH.
const RegistryBinary = "docker-registry"

// startTimeout bounds the wait for the registry to answer GET /v2/. It
// answers in about 0.1 s; the margin is for a loaded shared machine.
const startTimeout = 10 * time.Second

// Registry is a running docker-registry process serving plain HTTP on
// 127.0.0.1. Its methods push content over the registry's HTTP API.
type Registry struct {
	host   string
	scheme string // "http", or "https" for a registry serving TLS
	dir    string
	log    string
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has been waited for
	client *http.Client

	closeOnce sync.Once
	closeErr  error
}

// StartProcess starts a registry that stores its data and log under dir and
// returns once it answers GET /v2/. It is the core for tests and for the
// benchmark program; tests normally call Start instead.
func StartProcess(dir string) (*Registry, error) {
	return startRegistry(dir, "")
}

// StartMirror starts a registry under dir configured as a pull-through
// cache of the registry at upstreamHost ("127.0.0.1:PORT", plain HTTP). It
// is a real mirror for testing hosts.toml handling; it refuses pushes.
func StartMirror(dir, upstreamHost string) (*Registry, error) {
	if upstreamHost == "" {
		return nil, errors.New("start mirror: empty upstream host")
	}
	return startRegistry(dir, upstreamHost)
}

// Start starts a registry in a temporary directory for the test and stops
// it when the test ends. It fails the test (never skips it) when the
// registry cannot start or is not installed.
func Start(t testing.TB) *Registry {
	t.Helper()
	r, err := StartProcess(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// Mirror is Start for a pull-through mirror of upstreamHost.
func Mirror(t testing.TB, upstreamHost string) *Registry {
	t.Helper()
	r, err := StartMirror(t.TempDir(), upstreamHost)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// Host returns "127.0.0.1:PORT", the registry host as it appears in image
// references.
func (r *Registry) Host() string { return r.host }

// Pid returns the registry process's pid, for measuring its CPU time.
func (r *Registry) Pid() int { return r.cmd.Process.Pid }

// Dir returns the directory holding the registry's config, data and log.
func (r *Registry) Dir() string { return r.dir }

// Reference returns "HOST/repo:tag", or "HOST/repo@digest" when ref is a
// digest, for passing to commands under test.
func (r *Registry) Reference(repo, ref string) string {
	if strings.Contains(ref, ":") {
		return r.host + "/" + repo + "@" + ref
	}
	return r.host + "/" + repo + ":" + ref
}

// Close kills the registry process and waits for it to exit. It is safe to
// call more than once.
func (r *Registry) Close() error {
	r.closeOnce.Do(func() {
		r.client.CloseIdleConnections()
		// The registry holds no state worth a graceful shutdown: its storage
		// is a directory that the test is about to delete.
		if err := r.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			r.closeErr = err
		}
		<-r.exited
	})
	return r.closeErr
}

func startRegistry(dir, upstream string) (*Registry, error) {
	return startConfigured(dir, func(host string) string { return registryConfig(dir, host, upstream) }, nil)
}

// startConfigured starts a registry with the config cfg returns for its
// host. probe, when not nil, is the client that checks it answers (an
// HTTPS client for a registry serving TLS).
func startConfigured(dir string, cfg func(host string) string, probe *http.Client) (*Registry, error) {
	bin, err := exec.LookPath(RegistryBinary)
	if err != nil {
		return nil, ErrNotInstalled
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// Picking a port by listening on :0 and closing leaves a window in which
	// another process can take it; a registry that exits because its port is
	// taken is simply started again on a new one.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		r, err := tryStart(bin, dir, cfg, probe)
		if err == nil {
			return r, nil
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	return nil, lastErr
}

// errPortTaken marks a start that failed only because another process
// took the port first.
var errPortTaken = errors.New("port taken")

func tryStart(bin, dir string, cfg func(host string) string, probe *http.Client) (*Registry, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	host := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg(host)), 0o644); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "registry.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child holds its own descriptor
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Dir = dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = childProcAttr()
	scheme := "http"
	if probe != nil {
		scheme = "https"
	}
	r := &Registry{
		host:   host,
		scheme: scheme,
		dir:    dir,
		log:    logPath,
		cmd:    cmd,
		exited: make(chan struct{}),
		client: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
	}
	started := make(chan error, 1)
	go func() {
		// The parent-death signal fires when the *thread* that started the
		// child exits, and Go retires a thread when a goroutine locked to it
		// exits. Starting and waiting on one locked thread keeps that thread
		// alive exactly as long as the registry, whatever other code in the
		// test binary does with LockOSThread.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		cmd.Wait()
		close(r.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	if err := r.waitReady(probe); err != nil {
		r.Close()
		return nil, fmt.Errorf("registry on %s: %w\n--- tail of %s ---\n%s", host, err, logPath, tail(logPath, 20))
	}
	return r, nil
}

// waitReady polls GET /v2/ until the registry answers (401 counts, for a
// registry with auth), it exits, or startTimeout passes.
func (r *Registry) waitReady(probe *http.Client) error {
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	if probe == nil {
		probe = &http.Client{Timeout: time.Second}
	}
	for {
		resp, err := probe.Get(r.scheme + "://" + r.host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
			return fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		select {
		case <-r.exited:
			if strings.Contains(tail(r.log, 20), "address already in use") {
				return fmt.Errorf("registry exited: %w", errPortTaken)
			}
			return fmt.Errorf("registry exited during startup (%v)", r.cmd.ProcessState)
		case <-deadline.C:
			return fmt.Errorf("no answer to GET /v2/ within %v: %w", startTimeout, err)
		case <-tick.C:
		}
	}
}

// registryConfig is the registry's config.yml. Logging is at warn with the
// access log off so that a test run's output stays readable; the log still
// goes to a file for StartProcess's error messages. A mirror keeps its
// access log, so that tests can show the traffic it served.
func registryConfig(dir, host, upstream string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `version: 0.1
log:
  level: warn
  formatter: text
  accesslog:
    disabled: %t
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: imgfs-testregistry-not-a-secret
`, upstream == "", strconv.Quote(filepath.Join(dir, "data")), strconv.Quote(host))
	if upstream != "" {
		if !strings.Contains(upstream, "://") {
			upstream = "http://" + upstream
		}
		fmt.Fprintf(&b, "proxy:\n  remoteurl: %s\n", strconv.Quote(upstream))
	}
	return b.String()
}

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last n lines of the file at path, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
