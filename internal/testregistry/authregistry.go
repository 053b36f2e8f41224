package testregistry

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// authRegistryConfig is a registry over the storage of another (so that
// images pushed to a plain registry are served with auth), with extra
// YAML for auth and TLS.
func authRegistryConfig(dataDir, host, extra string) string {
	return fmt.Sprintf(`version: 0.1
log:
  level: warn
  formatter: text
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
  secret: imgfs-testregistry-not-a-secret
%s`, strconv.Quote(dataDir), strconv.Quote(host), extra)
}

// StartTokenAuth starts a registry serving plain's content (its storage)
// with `auth: token` trusting issuer. It is stopped when the test ends.
func StartTokenAuth(t testing.TB, plain *Registry, issuer *TokenIssuer) *Registry {
	t.Helper()
	dir := t.TempDir()
	extra := fmt.Sprintf(`auth:
  token:
    realm: %s
    service: %s
    issuer: %s
    rootcertbundle: %s
`, strconv.Quote(issuer.Realm()), strconv.Quote(issuer.Service), strconv.Quote(issuer.Issuer), strconv.Quote(issuer.RootCertBundle()))
	return startAuthRegistry(t, dir, plain, extra, nil)
}

// startAuthRegistry starts a registry in dir over plain's storage with
// extra config (see authRegistryConfig), polled through probe until it
// answers. It is stopped when the test ends.
func startAuthRegistry(t testing.TB, dir string, plain *Registry, extra string, probe *http.Client) *Registry {
	t.Helper()
	r, err := startConfigured(dir, func(host string) string {
		return authRegistryConfig(filepath.Join(plain.Dir(), "data"), host, extra)
	}, probe)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TLSRegistry is a registry serving HTTPS with a certificate from its own
// CA, and htpasswd (bcrypt) basic auth.
type TLSRegistry struct {
	*Registry
	// CAFile is the PEM file of the CA that signed the registry's
	// certificate.
	CAFile string
}

// StartBasicTLS starts a registry serving plain's content over TLS with a
// self-signed CA, and basic auth for user:password (bcrypt, made with
// htpasswd -B from apache2-utils). It is stopped when the test ends.
func StartBasicTLS(t testing.TB, plain *Registry, user, password string) *TLSRegistry {
	t.Helper()
	dir := t.TempDir()
	htpasswd := filepath.Join(dir, "htpasswd")
	out, err := exec.Command("htpasswd", "-Bbn", user, password).Output()
	if err != nil {
		t.Fatalf("htpasswd -B (apache2-utils; run scripts/setup.sh): %v", err)
	}
	if err := os.WriteFile(htpasswd, out, 0o600); err != nil {
		t.Fatal(err)
	}
	caFile, certFile, keyFile, pool, err := writeTestPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	extra := fmt.Sprintf(`  tls:
    certificate: %s
    key: %s
auth:
  htpasswd:
    realm: imgfs-test
    path: %s
`, strconv.Quote(certFile), strconv.Quote(keyFile), strconv.Quote(htpasswd))
	probe := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return &TLSRegistry{Registry: startAuthRegistry(t, dir, plain, extra, probe), CAFile: caFile}
}

// selfSignedCA makes a P-256 key and a CA certificate for it, signed by
// itself and valid from an hour ago for a day.
func selfSignedCA(commonName string) (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: commonName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	return key, der, nil
}

// writeTestPKI writes a CA and a server certificate for 127.0.0.1 signed
// by it, and returns their files and a pool trusting the CA.
func writeTestPKI(dir string) (caFile, certFile, keyFile string, pool *x509.CertPool, err error) {
	caKey, caDER, err := selfSignedCA("imgfs test CA")
	if err != nil {
		return
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return
	}
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{caFile, "CERTIFICATE", caDER}, {certFile, "CERTIFICATE", der}, {keyFile, "EC PRIVATE KEY", keyDER}} {
		if err = os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			return
		}
	}
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	return
}
