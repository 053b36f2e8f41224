package hosts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCA writes a self-signed certificate and its key as PEM files in
// dir and returns their paths.
func writeCA(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

func TestParse(t *testing.T) {
	dir := t.TempDir()
	writeCA(t, dir)
	file := filepath.Join(dir, "hosts.toml")
	type want struct {
		url  string
		caps string
		mir  bool
	}
	tests := []struct {
		name  string
		toml  string
		hosts []want
		check func(t *testing.T, hs []Host)
	}{
		{
			name:  "empty file: the default server",
			toml:  ``,
			hosts: []want{{"https://reg.example:5000/v2", "pull,resolve,push", false}},
		},
		{
			name: "mirrors in file order, then the server",
			toml: `server = "https://reg.example:5000"
[host."http://b.mirror:5000"]
  capabilities = ["pull"]
[host."https://a.mirror"]
  capabilities = ["pull", "resolve"]
[host."c.mirror/some/path"]
`,
			hosts: []want{
				{"http://b.mirror:5000/v2", "pull", true},
				{"https://a.mirror/v2", "pull,resolve", true},
				{"https://c.mirror/some/path/v2", "pull,resolve,push", true},
				{"https://reg.example:5000/v2", "pull,resolve,push", false},
			},
		},
		{
			name: "override_path keeps the path as the API root",
			toml: `[host."https://m/registry/api"]
  override_path = true
  capabilities = ["PULL"]
`,
			hosts: []want{{"https://m/registry/api", "pull", true}, {"https://reg.example:5000/v2", "pull,resolve,push", false}},
		},
		{
			name: "sub-tables do not repeat a host",
			toml: `[host."https://m"]
  capabilities = ["pull"]
[host."https://m".header]
  x-one = "1"
  x-two = ["a", "b"]
`,
			hosts: []want{{"https://m/v2", "pull", true}, {"https://reg.example:5000/v2", "pull,resolve,push", false}},
			check: func(t *testing.T, hs []Host) {
				if got := hs[0].Header.Values("X-Two"); strings.Join(got, ",") != "a,b" || hs[0].Header.Get("X-One") != "1" {
					t.Errorf("header = %v", hs[0].Header)
				}
			},
		},
		{
			name: "TLS settings, relative to the file's directory, and top-level keys for the server",
			toml: `server = "https://reg.example"
ca = "ca.pem"
skip_verify = false
[host."https://m"]
  ca = ["ca.pem", "` + filepath.Join(dir, "ca.pem") + `"]
  client = [["ca.pem", "key.pem"]]
  skip_verify = true
  dial_timeout = "3s"
`,
			hosts: []want{{"https://m/v2", "pull,resolve,push", true}, {"https://reg.example/v2", "pull,resolve,push", false}},
			check: func(t *testing.T, hs []Host) {
				m, s := hs[0], hs[1]
				if len(m.RootCAs) != 2 || len(m.Certificates) != 1 || m.SkipVerify == nil || !*m.SkipVerify || m.DialTimeout != 3*time.Second {
					t.Errorf("mirror TLS = %+v", m)
				}
				if len(s.RootCAs) != 1 || s.SkipVerify == nil || *s.SkipVerify || !s.HasTLSConfig() {
					t.Errorf("server TLS = %+v", s)
				}
				if cfg := m.ApplyTLS(nil2()); !cfg.InsecureSkipVerify || cfg.RootCAs == nil || len(cfg.Certificates) != 1 {
					t.Errorf("ApplyTLS = %+v", cfg)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs, err := Parse(file, []byte(tt.toml), "reg.example:5000", Defaults{})
			if err != nil {
				t.Fatal(err)
			}
			if len(hs) != len(tt.hosts) {
				t.Fatalf("got %d hosts, want %d: %+v", len(hs), len(tt.hosts), hs)
			}
			for i, w := range tt.hosts {
				if hs[i].BaseURL() != w.url || hs[i].Capabilities.String() != w.caps || hs[i].Mirror != w.mir {
					t.Errorf("host %d = %s %s mirror=%v, want %s %s mirror=%v", i, hs[i].BaseURL(), hs[i].Capabilities, hs[i].Mirror, w.url, w.caps, w.mir)
				}
			}
			if tt.check != nil {
				tt.check(t, hs)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	dir := t.TempDir()
	writeCA(t, dir)
	os.WriteFile(filepath.Join(dir, "notpem.txt"), []byte("hello"), 0o600)
	file := filepath.Join(dir, "hosts.toml")
	tests := []struct{ toml, want string }{
		{`server = "https://x`, file + ": toml: line 1"},
		{`sever = "https://x"`, file + `: unknown key sever`},
		{`[host."https://m"]` + "\ncapabilites = [\"pull\"]", `unknown key host."https://m".capabilites`},
		{`[host."https://m"]` + "\ncapabilities = [\"pul\"]", file + `: host."https://m".capabilities: unknown capability "pul" (want pull, resolve or push)`},
		{`capabilities = ["fetch"]`, file + `: capabilities: unknown capability "fetch"`},
		{`[host."https://m"]` + "\nca = \"missing.pem\"", file + `: host."https://m".ca: ` + filepath.Join(dir, "missing.pem") + `: no such file or directory`},
		{`ca = "notpem.txt"`, file + `: ca: ` + filepath.Join(dir, "notpem.txt") + `: no PEM certificates found`},
		{`ca = 5`, `ca: want a string or a list of strings, got int64`},
		{`[host."https://m"]` + "\nclient = [[\"ca.pem\"]]", `host."https://m".client: a pair must be`},
		{`[host."https://m"]` + "\nclient = \"ca.pem\"", `host."https://m".client: ` + filepath.Join(dir, "ca.pem") + `: tls:`},
		{`[host."ftp://m"]`, `host."ftp://m": URL "ftp://m": scheme must be http or https`},
		{`[host."https://u:p@m"]`, `carries credentials`},
		{`[host."https://m?x=1"]`, `a query or fragment is not allowed`},
		{`[host."https://m".header]` + "\n\"bad name\" = \"v\"", `header: "bad name" is not a valid header name`},
		{`dial_timeout = "soon"`, `dial_timeout: "soon" is not a positive duration`},
		{`capabilities = "pull"`, file + `: toml:`},
	}
	for _, tt := range tests {
		_, err := Parse(file, []byte(tt.toml), "reg.example", Defaults{})
		if err == nil {
			t.Errorf("%q: no error, want %q", tt.toml, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q:\n got %q\nwant one line containing %q", tt.toml, err, tt.want)
		}
	}
}
