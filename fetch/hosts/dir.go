package hosts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// SystemDir is containerd's hosts directory, used when it exists.
const SystemDir = "/etc/containerd/certs.d"

// DefaultFallback names the directory whose hosts.toml applies to
// registries without a directory of their own.
const DefaultFallback = "_default"

// DefaultDir returns the hosts directory to use when none is given:
// containerd's when it exists, else $XDG_CONFIG_HOME/imgfs/certs.d (or
// ~/.config/imgfs/certs.d). The directory need not exist.
func DefaultDir() string {
	if st, err := os.Stat(SystemDir); err == nil && st.IsDir() {
		return SystemDir
	}
	if x := os.Getenv("XDG_CONFIG_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "imgfs", "certs.d")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".config", "imgfs", "certs.d")
	}
	return ""
}

// Defaults say what the server is when hosts.toml does not name one.
type Defaults struct {
	// Scheme is "https" unless --plain-http asked for "http".
	Scheme string
}

// server returns the default server URL for registry.
func (d Defaults) server(registry string) string {
	if registry == "docker.io" {
		return "https://registry-1.docker.io"
	}
	scheme := d.Scheme
	if scheme == "" {
		scheme = "https"
	}
	return scheme + "://" + registry
}

// Dir returns the directory under root that configures registry: the
// host_port_ spelling, then host:port, then _default; "" when none exists.
func Dir(root, registry string) (string, error) {
	if root == "" {
		return "", nil
	}
	if registry == "" || strings.ContainsAny(registry, `/\`) || strings.HasPrefix(registry, ".") {
		return "", fmt.Errorf("registry %q cannot name a hosts directory", registry)
	}
	for _, name := range candidates(registry) {
		p := filepath.Join(root, name)
		st, err := os.Stat(p)
		switch {
		case err == nil && st.IsDir():
			return p, nil
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("hosts directory: %w", err)
		}
	}
	return "", nil
}

// candidates lists the directory names that may configure registry, in
// the order containerd looks for them.
func candidates(registry string) []string {
	var out []string
	if i := strings.LastIndexByte(registry, ':'); i > 0 {
		out = append(out, registry[:i]+"_"+registry[i+1:]+"_")
	}
	return append(out, registry, DefaultFallback)
}

// Load returns the hosts to try for registry according to the hosts
// directory root: those of its hosts.toml when there is one, or the
// default server with the certificates of a Docker-style certs directory
// (*.crt CAs, *.cert and *.key client pairs), or the default server alone.
func Load(root, registry string, d Defaults) ([]Host, error) {
	dir, err := Dir(root, registry)
	if err != nil || dir == "" {
		if err != nil {
			return nil, err
		}
		h, _ := parseURL(d.server(registry), false)
		h.Capabilities = allCapabilities
		return []Host{h}, nil
	}
	file := filepath.Join(dir, "hosts.toml")
	data, err := readSmall(file)
	switch {
	case err == nil:
		return Parse(file, data, registry, d)
	case errors.Is(err, fs.ErrNotExist):
		return loadCertsDir(dir, registry, d)
	default:
		return nil, err
	}
}

// loadCertsDir reads a Docker-style certs directory for the server.
func loadCertsDir(dir, registry string, d Defaults) ([]Host, error) {
	h, err := parseHost(dir, d.server(registry), "server", hostFields{})
	if err != nil {
		return nil, err
	}
	h.Source = dir
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("hosts directory: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() {
			continue
		}
		switch {
		case strings.HasSuffix(name, ".crt"):
			certs, err := loadCAs(filepath.Join(dir, name))
			if err != nil {
				return nil, err
			}
			h.RootCAs = append(h.RootCAs, certs...)
		case strings.HasSuffix(name, ".cert"):
			key := strings.TrimSuffix(name, ".cert") + ".key"
			if _, err := os.Stat(filepath.Join(dir, key)); err != nil {
				key = ""
			}
			cert, err := loadKeyPair(filepath.Join(dir, name), key, dir)
			if err != nil {
				return nil, err
			}
			h.Certificates = append(h.Certificates, cert)
		}
	}
	return []Host{h}, nil
}
