package testregistry

import (
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

// NginxBinary is the program StartNginxMirror runs, looked up on PATH.
const NginxBinary = "nginx"

// ErrNginxNotInstalled is returned when nginx is not on PATH.
var ErrNginxNotInstalled = errors.New("nginx not installed: run scripts/setup.sh")

// Nginx is nginx running as a range-caching registry mirror: blobs are
// cached in 1 MiB slices (the slice module, as CDNs and registry caches
// do it), each slice fetched from upstream once however many clients ask
// at once (proxy_cache_lock), and manifests cached briefly and served
// stale when upstream is down.
type Nginx struct {
	host   string
	dir    string
	cmd    *exec.Cmd
	exited chan struct{}

	closeOnce sync.Once
}

// StartNginxMirror starts nginx under dir as a mirror of upstreamHost
// ("127.0.0.1:PORT", plain HTTP) and returns once it answers.
func StartNginxMirror(dir, upstreamHost string) (*Nginx, error) {
	bin, err := exec.LookPath(NginxBinary)
	if err != nil {
		return nil, ErrNginxNotInstalled
	}
	for _, d := range []string{"cache", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		host := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		n, err := startNginx(bin, dir, host, upstreamHost)
		if err == nil {
			return n, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	return nil, lastErr
}

// NginxMirror is StartNginxMirror for a test, stopped when it ends.
func NginxMirror(t testing.TB, upstreamHost string) *Nginx {
	t.Helper()
	n, err := StartNginxMirror(t.TempDir(), upstreamHost)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func startNginx(bin, dir, host, upstream string) (*Nginx, error) {
	cfg := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cfg, []byte(nginxConfig(dir, host, upstream)), 0o644); err != nil {
		return nil, err
	}
	errLog := filepath.Join(dir, "error.log")
	os.Remove(errLog)
	cmd := exec.Command(bin, "-c", cfg, "-p", dir, "-e", errLog)
	cmd.SysProcAttr = childProcAttr()
	n := &Nginx{host: host, dir: dir, cmd: cmd, exited: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// As for the registry: the parent-death signal follows this thread.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		cmd.Wait()
		close(n.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	deadline := time.Now().Add(startTimeout)
	probe := &http.Client{Timeout: time.Second}
	for {
		resp, err := probe.Get("http://" + host + "/nginx-ready")
		if err == nil {
			resp.Body.Close()
			return n, nil
		}
		select {
		case <-n.exited:
			return nil, fmt.Errorf("nginx on %s exited during startup: %s", host, tail(errLog, 10))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			n.Close()
			return nil, fmt.Errorf("nginx on %s: no answer within %v: %s", host, startTimeout, tail(errLog, 10))
		}
	}
}

// nginxConfig is a single-process nginx (so that killing it leaves no
// workers behind) caching blobs by 1 MiB slices. The access log records
// each request with its Range, status and body bytes.
func nginxConfig(dir, host, upstream string) string {
	q := func(p string) string { return strconv.Quote(filepath.Join(dir, p)) }
	return fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s;
error_log %[2]s warn;
events { worker_connections 1024; }
http {
  log_format mirror '$request_method $uri range=$http_range status=$status bytes=$body_bytes_sent cache=$upstream_cache_status';
  access_log %[3]s mirror;
  client_body_temp_path %[4]s;
  proxy_temp_path %[5]s;
  fastcgi_temp_path %[6]s;
  uwsgi_temp_path %[7]s;
  scgi_temp_path %[8]s;
  proxy_cache_path %[9]s levels=1:2 keys_zone=mirror:16m max_size=4g inactive=1d use_temp_path=off;
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  server {
    listen %[10]s;
    location = /nginx-ready { return 204; }
    location ~ ^/v2/.+/blobs/sha256: {
      slice 1m;
      proxy_cache mirror;
      proxy_cache_key $uri$slice_range;
      proxy_set_header Range $slice_range;
      proxy_cache_valid 200 206 1d;
      proxy_cache_lock on;
      proxy_cache_lock_timeout 120s;
      proxy_cache_lock_age 120s;
      proxy_pass http://%[11]s;
    }
    location /v2/ {
      proxy_cache mirror;
      proxy_cache_key $uri$http_accept;
      proxy_cache_valid 200 10m;
      proxy_cache_use_stale error timeout http_500 http_502 http_503 http_504;
      proxy_pass http://%[11]s;
    }
  }
}
`, q("nginx.pid"), q("error.log"), q("access.log"), q("tmp/body"), q("tmp/proxy"), q("tmp/fastcgi"), q("tmp/uwsgi"), q("tmp/scgi"),
		q("cache"), host, upstream)
}

// Host returns "127.0.0.1:PORT".
func (n *Nginx) Host() string { return n.host }

// AccessLog returns nginx's access log: one line per request, with its
// Range, status, bytes and cache status.
func (n *Nginx) AccessLog() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "access.log"))
	return string(b)
}

// Close kills nginx and waits for it to exit. It is safe to call more
// than once.
func (n *Nginx) Close() error {
	n.closeOnce.Do(func() {
		n.cmd.Process.Kill()
		<-n.exited
	})
	return nil
}
