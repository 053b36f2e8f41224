package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imgfs/imgfs/internal/testregistry"
)

var (
	publicOnce sync.Once
	publicErr  error
)

// authFixtures pushes (once) the three-layer image as public/three too:
// the token issuer grants anonymous pulls under public/ only.
func authFixtures(t *testing.T) *fixtures {
	t.Helper()
	fx := registryFixtures(t)
	publicOnce.Do(func() { _, publicErr = fx.reg.PushImage("public/three", "v1", testregistry.ThreeLayerImage(false)) })
	if publicErr != nil {
		t.Fatal(publicErr)
	}
	return fx
}

// fetchCmd runs imgfs fetch of ref into a fresh cache with args and env.
func fetchCmd(t *testing.T, env []string, ref string, args ...string) result {
	t.Helper()
	return imgfs(t, env, append(append([]string{"fetch", "-q", "--cache-dir", t.TempDir()}, args...), ref)...)
}

func mustSucceed(t *testing.T, what string, r result) {
	t.Helper()
	if r.code != 0 {
		t.Errorf("%s: %s", what, describe(r))
	}
}

func TestTokenAuth(t *testing.T) {
	fx := authFixtures(t)
	issuer := testregistry.StartTokenIssuer(t, t.TempDir(), map[string]string{"alice": "s3cret"})
	reg := testregistry.StartTokenAuth(t, fx.reg, issuer)
	noCreds := []string{"DOCKER_CONFIG=" + t.TempDir()}

	mustSucceed(t, "anonymous pull of a public repository", fetchCmd(t, noCreds, reg.Reference("public/three", "v1")))
	wantError(t, fetchCmd(t, noCreds, reg.Reference("three/oci", "v1")), 1, reg.Host(), "check credentials")
	mustSucceed(t, "authenticated pull", fetchCmd(t, noCreds, reg.Reference("three/oci", "v1"), "--user", "alice:s3cret"))
	wantError(t, fetchCmd(t, noCreds, reg.Reference("three/oci", "v1"), "--user", "alice:wrong"), 1,
		reg.Host()+": its token service "+issuer.Realm()+" refused the credentials (401 Unauthorized); check the user name and password (--user, or docker login "+reg.Host()+")")

	t.Run("expiry during a long read", func(t *testing.T) {
		// The registry honours the first token for 2 s. The reader reads
		// the start of the layer, waits past that, and reads the rest:
		// the later range requests carry an expired token.
		issuer.SetLifetime(2 * time.Second)
		defer issuer.SetLifetime(time.Hour)
		proxy := testregistry.StartProxy(t, reg.Host())
		layer := fx.three[false].Layers[2]
		mnt := mount(t, t.TempDir(), proxy.Host()+"/three/oci:v1", "--user", "alice:s3cret")
		blob := filepath.Join(mnt, "blobs", "sha256", layer.Digest.Encoded())
		run(t, "dd", "if="+blob, "of=/dev/null", "bs=1M", "count=1")
		time.Sleep(2500 * time.Millisecond)
		// The token in use has expired: the mount's, or, on a machine
		// loaded enough that the mount and the first read took over 2 s,
		// the one renewed during that read. The next one must outlive the
		// rest of the read, however slow a loaded machine makes it, or a
		// second expiry would rightly cost a second renewal.
		issuer.SetLifetime(time.Hour)
		before := issuer.Issued()
		catBlob(t, mnt, layer.Digest.Encoded())
		renewals := issuer.Issued() - before
		rejected := 0
		for _, r := range proxy.Requests() {
			if r.Status == 401 && strings.Contains(r.Path, "/blobs/") {
				rejected++
			}
		}
		t.Logf("renewals during the read after the expiry: %d; blob requests rejected as expired: %d", renewals, rejected)
		if renewals != 1 {
			t.Errorf("%d renewals, want exactly 1 for one expiry", renewals)
		}
	})

	issuer.Close()
	wantError(t, fetchCmd(t, noCreds, reg.Reference("public/three", "v1")), 1,
		reg.Host()+": cannot reach its token service "+issuer.Realm()+" (connection refused); is the token service up?")
}

// writeDockerConfig writes a DOCKER_CONFIG with config (JSON) and a
// docker-credential-<name> script for each helper, and returns the
// environment that uses them.
func writeDockerConfig(t *testing.T, config string, helpers map[string]string) []string {
	t.Helper()
	dir, bin := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, script := range helpers {
		if err := os.WriteFile(filepath.Join(bin, "docker-credential-"+name), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return []string{"DOCKER_CONFIG=" + dir, "PATH=" + bin + ":" + os.Getenv("PATH")}
}

func TestCredentialHelpers(t *testing.T) {
	fx := authFixtures(t)
	issuer := testregistry.StartTokenIssuer(t, t.TempDir(), map[string]string{"alice": "s3cret"})
	reg := testregistry.StartTokenAuth(t, fx.reg, issuer)
	ref := reg.Reference("three/oci", "v1")
	good := `read server; [ "$1" = get ] && printf '{"ServerURL":"%s","Username":"alice","Secret":"s3cret"}' "$server"` + "\n"
	// Helpers report errors on standard output (docker-credential-helpers).
	bad := "echo 'keychain locked'; exit 1\n"

	env := writeDockerConfig(t, fmt.Sprintf(`{"credHelpers":{%q:"imgfstest"}}`, reg.Host()), map[string]string{"imgfstest": good})
	mustSucceed(t, "credHelpers", fetchCmd(t, env, ref))
	env = writeDockerConfig(t, `{"credsStore":"imgfsstore"}`, map[string]string{"imgfsstore": good})
	mustSucceed(t, "credsStore", fetchCmd(t, env, ref))
	env = writeDockerConfig(t, fmt.Sprintf(`{"credHelpers":{%q:"imgfsbroken"}}`, reg.Host()), map[string]string{"imgfsbroken": bad})
	wantError(t, fetchCmd(t, env, ref), 1, reg.Host()+": the docker credential helper failed:", "keychain locked",
		"fix the helper named in $DOCKER_CONFIG/config.json (credHelpers, credsStore), or pass --user")
}

func TestBasicAuthOverTLS(t *testing.T) {
	fx := registryFixtures(t)
	reg := testregistry.StartBasicTLS(t, fx.reg, "bob", "pw")
	ref := reg.Reference("three/oci", "v1")
	noCreds := []string{"DOCKER_CONFIG=" + t.TempDir()}

	mustSucceed(t, "--tlscacert", fetchCmd(t, noCreds, ref, "--tlscacert", reg.CAFile, "--user", "bob:pw"))
	wantError(t, fetchCmd(t, noCreds, ref, "--user", "bob:pw"), 1, reg.Host(), "--tlscacert")

	hostsDir := t.TempDir()
	os.MkdirAll(filepath.Join(hostsDir, reg.Host()), 0o755)
	os.WriteFile(filepath.Join(hostsDir, reg.Host(), "hosts.toml"), []byte(fmt.Sprintf("ca = %q\n", reg.CAFile)), 0o644)
	mustSucceed(t, "hosts.toml ca", fetchCmd(t, noCreds, ref, "--hosts-dir", hostsDir, "--user", "bob:pw"))

	wantError(t, fetchCmd(t, noCreds, ref, "--hosts-dir", hostsDir, "--user", "bob:wrong"), 1,
		reg.Host()+"/three/oci:v1: 401 Unauthorized, check credentials (--user, or docker login)")
}
