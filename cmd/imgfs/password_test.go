package main

import (
	"bytes"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/imgfs/imgfs/internal/testfuse"
)

// basicAuthRegistry fronts the test registry with HTTP basic auth over
// TLS, the way an htpasswd registry answers: 401 with a Basic challenge
// unless the request carries the right user and password. It counts the
// requests it let through. caFile is its certificate, for --tlscacert.
type basicAuthRegistry struct {
	*httptest.Server
	caFile string
	passed atomic.Int64
}

func startBasicAuthRegistry(t *testing.T, upstream, user, password string) *basicAuthRegistry {
	t.Helper()
	target, err := url.Parse("http://" + upstream)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	b := &basicAuthRegistry{caFile: filepath.Join(t.TempDir(), "ca.pem")}
	b.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="imgfs-test"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
			return
		}
		b.passed.Add(1)
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(b.Close)
	b.Config.ErrorLog = log.New(io.Discard, "", 0)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.Certificate().Raw})
	if err := os.WriteFile(b.caFile, ca, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *basicAuthRegistry) host() string { return strings.TrimPrefix(b.URL, "https://") }

// TestPasswordNeverOnCommandLine mounts in the background through a
// registry that demands basic auth, with the password given on standard
// input and on the command line, and checks that the serving child's
// command line and environment never hold it while the mount works.
func TestPasswordNeverOnCommandLine(t *testing.T) {
	testfuse.Require(t)
	fx := registryFixtures(t)
	const password = "pw-5e3c7a9d-never-in-proc"
	reg := startBasicAuthRegistry(t, fx.reg.Host(), "alice", password)
	ref := reg.host() + "/three/oci:v1"
	layer := fx.three[false].Layers[2]

	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
	}{
		{"--password-stdin", []string{"-u", "alice", "--password-stdin"}, password + "\n"},
		{"user:password", []string{"--user=alice:" + password}, ""},
		{"password read from stdin", []string{"--user", "alice"}, password + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mnt := t.TempDir()
			args := append([]string{"mount", "--background", "--cache-dir", t.TempDir(), "--tlscacert", reg.caFile}, tc.args...)
			r := imgfsWithStdin(t, nil, tc.stdin, append(args, ref, mnt)...)
			if r.code != 0 {
				t.Fatalf("mount: %s", describe(r))
			}
			t.Cleanup(func() { imgfs(t, nil, "unmount", mnt) })
			pid := backgroundPID(t, r.stdout)
			for _, f := range []string{"cmdline", "environ"} {
				data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), f))
				if err != nil {
					t.Fatal(err)
				}
				if bytes.Contains(data, []byte(password)) {
					t.Errorf("/proc/%d/%s holds the password: %q", pid, f, data)
				}
				if f == "cmdline" && !bytes.Contains(data, []byte("--user=alice\x00")) {
					t.Errorf("/proc/%d/cmdline lacks --user=alice: %q", pid, data)
				}
			}
			before := reg.passed.Load()
			got, err := sha256Of(filepath.Join(mnt, "blobs", "sha256", layer.Digest.Encoded()))
			if err != nil || got != layer.Digest.String() {
				t.Errorf("read through the mount: %s %v", got, err)
			}
			if reg.passed.Load() == before {
				t.Error("the layer read sent no authenticated request: the test proves nothing")
			}
		})
	}

	t.Run("wrong password", func(t *testing.T) {
		r := imgfsWithStdin(t, nil, "wrong\n", "mount", "--background", "--cache-dir", t.TempDir(), "--tlscacert", reg.caFile, "-u", "alice", "--password-stdin", ref, t.TempDir())
		wantError(t, r, 1, "unauthorized")
	})
	t.Run("--password-stdin without --user", func(t *testing.T) {
		r := imgfsWithStdin(t, nil, password+"\n", "mount", "--cache-dir", t.TempDir(), "--password-stdin", ref, t.TempDir())
		wantError(t, r, 2, "--password-stdin needs --user")
	})
}

// sha256Of hashes a file with sha256sum, in a child process, as a user's
// tool would read the mount.
func sha256Of(path string) (string, error) {
	out, err := exec.Command("sha256sum", path).Output()
	if err != nil {
		return "", err
	}
	sum, _, _ := strings.Cut(string(out), " ")
	return "sha256:" + sum, nil
}
