package hosts

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// fileConfig is a hosts.toml. The top-level host fields configure the
// server.
type fileConfig struct {
	hostFields
	Server string                `toml:"server"`
	Host   map[string]hostFields `toml:"host"`
}

// hostFields are the keys of one host, with containerd's types: ca and
// client take a string or a list, header values a string or a list.
type hostFields struct {
	Capabilities []string       `toml:"capabilities"`
	CA           any            `toml:"ca"`
	Client       any            `toml:"client"`
	SkipVerify   *bool          `toml:"skip_verify"`
	Header       map[string]any `toml:"header"`
	OverridePath bool           `toml:"override_path"`
	DialTimeout  string         `toml:"dial_timeout"`
}

// Limits on what a hosts.toml may hold: it is a local file, but a typo
// should not make imgfs read a huge file or open a thousand hosts.
const (
	maxFileSize = 1 << 20
	maxHosts    = 64
)

// Parse reads the hosts.toml at file (data is its content) for registry
// and returns its hosts in order: the [host."…"] entries as written, then
// the server. Relative ca and client paths are relative to file's
// directory. Every error names file and the key at fault.
func Parse(file string, data []byte, registry string, d Defaults) ([]Host, error) {
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s: over the %d KiB limit for a hosts.toml", file, maxFileSize>>10)
	}
	var c fileConfig
	md, err := toml.Decode(string(data), &c)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", file, oneLine(err.Error()))
	}
	if extra := md.Undecoded(); len(extra) > 0 {
		return nil, fmt.Errorf("%s: unknown key %s (known: server, capabilities, ca, client, skip_verify, header, override_path, dial_timeout, [host.\"URL\"])", file, extra[0])
	}
	// The order of [host."…"] tables is the order to try them in; the
	// decoded map has none, the metadata has it.
	var order []string
	seen := map[string]bool{}
	for _, k := range md.Keys() {
		if len(k) >= 2 && k[0] == "host" && !seen[k[1]] {
			seen[k[1]] = true
			order = append(order, k[1])
		}
	}
	if len(order) > maxHosts {
		return nil, fmt.Errorf("%s: %d hosts, over the limit of %d", file, len(order), maxHosts)
	}
	dir := filepath.Dir(file)
	var out []Host
	for _, name := range order {
		key := "host." + strconv.Quote(name)
		h, err := parseHost(dir, name, key, c.Host[name])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		h.Mirror = true
		h.Source = file + " " + key
		out = append(out, h)
	}
	server := c.Server
	if server == "" {
		server = d.server(registry)
	}
	h, err := parseHost(dir, server, "server", c.hostFields)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	h.Source = file + " server"
	return append(out, h), nil
}

// parseHost validates one host: its URL (named by key in errors) and its
// fields, loading the CA and client files it names.
func parseHost(dir, rawURL, key string, f hostFields) (Host, error) {
	h, err := parseURL(rawURL, f.OverridePath)
	if err != nil {
		return Host{}, fmt.Errorf("%s: %w", key, err)
	}
	// Top-level keys configure the server: name them bare.
	field := func(name string) string {
		if key == "server" {
			return name
		}
		return key + "." + name
	}
	if h.Capabilities, err = parseCapabilities(f.Capabilities); err != nil {
		return Host{}, fmt.Errorf("%s: %w", field("capabilities"), err)
	}
	h.SkipVerify = f.SkipVerify
	if f.CA != nil {
		paths, err := stringList(f.CA)
		if err != nil {
			return Host{}, fmt.Errorf("%s: %w", field("ca"), err)
		}
		h.RootCAs = []*x509.Certificate{}
		for _, p := range paths {
			certs, err := loadCAs(absPath(dir, p))
			if err != nil {
				return Host{}, fmt.Errorf("%s: %w", field("ca"), err)
			}
			h.RootCAs = append(h.RootCAs, certs...)
		}
	}
	if f.Client != nil {
		pairs, err := clientPairs(f.Client)
		if err != nil {
			return Host{}, fmt.Errorf("%s: %w", field("client"), err)
		}
		for _, p := range pairs {
			cert, err := loadKeyPair(absPath(dir, p[0]), p[1], dir)
			if err != nil {
				return Host{}, fmt.Errorf("%s: %w", field("client"), err)
			}
			h.Certificates = append(h.Certificates, cert)
		}
	}
	if f.Header != nil {
		if h.Header, err = parseHeader(f.Header); err != nil {
			return Host{}, fmt.Errorf("%s: %w", field("header"), err)
		}
	}
	if f.DialTimeout != "" {
		d, err := time.ParseDuration(f.DialTimeout)
		if err != nil || d <= 0 {
			return Host{}, fmt.Errorf("%s: %q is not a positive duration such as \"5s\"", field("dial_timeout"), f.DialTimeout)
		}
		h.DialTimeout = d
	}
	return h, nil
}

// parseURL reads a host URL the way containerd does: https:// when no
// scheme is given, and the API root "/v2" appended to the path unless
// overridePath says the path is the API root.
func parseURL(raw string, overridePath bool) (Host, error) {
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Host{}, fmt.Errorf("bad URL: %s", oneLine(err.Error()))
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return Host{}, fmt.Errorf("URL %q: scheme must be http or https", raw)
	case u.Host == "" || u.Hostname() == "":
		return Host{}, fmt.Errorf("URL %q has no host", raw)
	case u.User != nil:
		return Host{}, fmt.Errorf("URL %q carries credentials: use docker login or a credential helper instead", u.Redacted())
	case u.RawQuery != "" || u.Fragment != "":
		return Host{}, fmt.Errorf("URL %q: a query or fragment is not allowed", raw)
	}
	p := u.Path
	if p != "" {
		p = path.Clean(p)
	}
	if !overridePath && !strings.HasSuffix(p, "/v2") {
		p += "/v2"
	}
	p = strings.TrimSuffix(p, "/")
	return Host{Scheme: u.Scheme, Host: u.Host, Path: p}, nil
}

func parseCapabilities(names []string) (Capability, error) {
	if names == nil {
		return allCapabilities, nil
	}
	var c Capability
	for _, n := range names {
		switch strings.ToLower(n) {
		case "pull":
			c |= Pull
		case "resolve":
			c |= Resolve
		case "push":
			c |= Push
		default:
			return 0, fmt.Errorf("unknown capability %q (want pull, resolve or push)", n)
		}
	}
	return c, nil
}

// stringList accepts a string or a list of strings.
func stringList(v any) ([]string, error) {
	switch v := v.(type) {
	case string:
		return []string{v}, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("want a string or a list of strings, got an element of type %T", e)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("want a string or a list of strings, got %T", v)
}

// clientPairs accepts a file holding both certificate and key, a list of
// such files, or a list of [certificate, key] pairs. An empty key path
// means the key is in the certificate's file.
func clientPairs(v any) ([][2]string, error) {
	if s, ok := v.(string); ok {
		return [][2]string{{s, ""}}, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("want a file, a list of files or a list of [cert, key] pairs, got %T", v)
	}
	var out [][2]string
	for _, e := range list {
		switch e := e.(type) {
		case string:
			out = append(out, [2]string{e, ""})
		case []any:
			pair, err := stringList(e)
			if err != nil || len(pair) != 2 {
				return nil, fmt.Errorf("a pair must be [\"cert.pem\", \"key.pem\"], got %v", e)
			}
			out = append(out, [2]string{pair[0], pair[1]})
		default:
			return nil, fmt.Errorf("want a file or a [cert, key] pair, got %T", e)
		}
	}
	return out, nil
}

func parseHeader(m map[string]any) (http.Header, error) {
	h := http.Header{}
	for name, v := range m {
		if !validHeaderName(name) {
			return nil, fmt.Errorf("%q is not a valid header name", name)
		}
		values, err := stringList(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		for _, val := range values {
			if strings.ContainsAny(val, "\r\n\x00") {
				return nil, fmt.Errorf("%s: a value must be one line", name)
			}
			h.Add(name, val)
		}
	}
	return h, nil
}

// validHeaderName reports whether s is an HTTP token (RFC 9110).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r > 0x7e || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

func absPath(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// loadCAs reads the PEM certificates in file.
func loadCAs(file string) ([]*x509.Certificate, error) {
	data, err := readSmall(file)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %s", file, oneLine(err.Error()))
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificates found", file)
	}
	return certs, nil
}

// loadKeyPair loads a client certificate and its key; an empty keyFile
// means the key is in certFile.
func loadKeyPair(certFile, keyFile, dir string) (tls.Certificate, error) {
	certPEM, err := readSmall(certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM := certPEM
	if keyFile != "" {
		keyFile = absPath(dir, keyFile)
		if keyPEM, err = readSmall(keyFile); err != nil {
			return tls.Certificate{}, err
		}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s: %s", certFile, oneLine(err.Error()))
	}
	return cert, nil
}

// readSmall reads a certificate or key file, refusing huge ones.
func readSmall(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s: %w", file, pe.Err)
		}
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s: over the %d KiB limit", file, maxFileSize>>10)
	}
	return data, nil
}

// oneLine keeps a message to one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
