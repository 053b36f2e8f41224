package hosts

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"
)

func nil2() *tls.Config { return &tls.Config{} }

func TestDirSelection(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"docker.io", "reg.example:5000", "legacy_5001_", "legacy:5001", DefaultFallback} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	tests := []struct{ registry, want string }{
		{"docker.io", "docker.io"},
		{"reg.example:5000", "reg.example:5000"},
		{"legacy:5001", "legacy_5001_"}, // containerd looks for the escaped name first
		{"other.example", DefaultFallback},
		{"reg.example:6000", DefaultFallback},
	}
	for _, tt := range tests {
		got, err := Dir(root, tt.registry)
		if err != nil || got != filepath.Join(root, tt.want) {
			t.Errorf("Dir(%s) = %q, %v; want %s", tt.registry, got, err, tt.want)
		}
	}
	os.Remove(filepath.Join(root, DefaultFallback))
	if got, err := Dir(root, "other.example"); got != "" || err != nil {
		t.Errorf("without _default: %q, %v", got, err)
	}
	if _, err := Dir(root, "../etc"); err == nil {
		t.Error("a registry name with a slash must not name a directory")
	}
}

func TestLoad(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "reg.example"), 0o755)
	os.WriteFile(filepath.Join(root, "reg.example", "hosts.toml"), []byte(`
server = "http://reg.example"
[host."http://mirror:5000"]
  capabilities = ["pull", "resolve"]
[host."http://puller:5000"]
  capabilities = ["pull"]
`), 0o644)
	hs, err := Load(root, "reg.example", Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	names := func(hs []Host) (out []string) {
		for _, h := range hs {
			out = append(out, h.Host)
		}
		return out
	}
	if got := names(Select(hs, Resolve)); len(got) != 2 || got[0] != "mirror:5000" || got[1] != "reg.example" {
		t.Errorf("resolve hosts = %v", got)
	}
	if got := names(Select(hs, Pull)); len(got) != 3 || got[1] != "puller:5000" {
		t.Errorf("pull hosts = %v", got)
	}

	// No directory: the default server, over the default scheme.
	for _, tt := range []struct {
		registry string
		d        Defaults
		want     string
	}{
		{"docker.io", Defaults{}, "https://registry-1.docker.io/v2"},
		{"plain.example:5000", Defaults{Scheme: "http"}, "http://plain.example:5000/v2"},
		{"tls.example", Defaults{}, "https://tls.example/v2"},
	} {
		hs, err := Load(root, tt.registry, tt.d)
		if err != nil || len(hs) != 1 || hs[0].BaseURL() != tt.want || hs[0].Mirror {
			t.Errorf("Load(%s) = %+v, %v; want %s", tt.registry, hs, err, tt.want)
		}
	}

	// A Docker-style certs directory without hosts.toml.
	certs := filepath.Join(root, "certs.example")
	os.MkdirAll(certs, 0o755)
	ca, _ := writeCA(t, certs)
	os.Rename(ca, filepath.Join(certs, "ca.crt"))
	hs, err = Load(root, "certs.example", Defaults{})
	if err != nil || len(hs) != 1 || len(hs[0].RootCAs) != 1 {
		t.Errorf("certs dir: %+v, %v", hs, err)
	}
}

func TestDefaultDir(t *testing.T) {
	if _, err := os.Stat(SystemDir); err == nil {
		t.Skip(SystemDir + " exists here")
	}
	t.Setenv("XDG_CONFIG_HOME", "/x")
	if got := DefaultDir(); got != "/x/imgfs/certs.d" {
		t.Errorf("DefaultDir = %q", got)
	}
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("HOME", "/home/u")
	if got := DefaultDir(); got != "/home/u/.config/imgfs/certs.d" {
		t.Errorf("DefaultDir = %q", got)
	}
}
