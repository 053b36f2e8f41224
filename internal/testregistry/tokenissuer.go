package testregistry

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// registryLeeway is how long past a token's expiry distribution 2.8 still
// accepts it (registry/auth/token: Leeway, 60 s).
const registryLeeway = 60 * time.Second

// TokenIssuer is a token server in the manner of Docker's token spec: a
// registry configured with `auth: token` sends clients to it, and it
// answers with a JWT signed by a key the registry trusts (its certificate
// is the registry's rootcertbundle), granting pull on the repositories
// the caller may read. Anonymous callers may pull repositories under
// "public/"; users (basic auth) may pull everything.
type TokenIssuer struct {
	Service string
	Issuer  string

	ln       net.Listener
	srv      *http.Server
	key      *ecdsa.PrivateKey
	certDER  []byte
	bundle   string
	users    map[string]string
	lifetime atomic.Int64 // time.Duration the registry will honour a token
	issued   atomic.Int64
}

// StartTokenIssuer starts an issuer on 127.0.0.1 that knows users (name →
// password) and writes its certificate bundle under dir.
func StartTokenIssuer(t testing.TB, dir string, users map[string]string) *TokenIssuer {
	t.Helper()
	ti, err := NewTokenIssuer(dir, users)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ti.Close)
	return ti
}

// NewTokenIssuer is StartTokenIssuer without a test.
func NewTokenIssuer(dir string, users map[string]string) (*TokenIssuer, error) {
	key, der, err := selfSignedCA("imgfs test token issuer")
	if err != nil {
		return nil, err
	}
	bundle := filepath.Join(dir, "token-issuer.pem")
	if err := os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ti := &TokenIssuer{Service: "imgfs-test-registry", Issuer: "imgfs-test-issuer", ln: ln, key: key, certDER: der, bundle: bundle, users: users}
	ti.lifetime.Store(int64(time.Hour))
	ti.srv = &http.Server{Handler: ti, ReadHeaderTimeout: 10 * time.Second}
	go ti.srv.Serve(ln)
	return ti, nil
}

// Realm returns the URL registries send clients to for tokens.
func (ti *TokenIssuer) Realm() string { return "http://" + ti.ln.Addr().String() + "/token" }

// RootCertBundle returns the file of the certificate the registry must
// trust.
func (ti *TokenIssuer) RootCertBundle() string { return ti.bundle }

// SetLifetime sets how long the registry will accept tokens issued from
// now on. Distribution accepts a token up to a minute past its expiry, so
// the issuer writes the expiry that long before the end of lifetime.
func (ti *TokenIssuer) SetLifetime(d time.Duration) { ti.lifetime.Store(int64(d)) }

// Issued returns how many tokens the issuer has handed out.
func (ti *TokenIssuer) Issued() int64 { return ti.issued.Load() }

// Close stops the issuer: clients then cannot connect to the realm.
func (ti *TokenIssuer) Close() { ti.srv.Close() }

// ServeHTTP answers GET /token?service=…&scope=repository:NAME:pull.
func (ti *TokenIssuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/token" {
		http.NotFound(w, r)
		return
	}
	subject := ""
	if user, pass, ok := r.BasicAuth(); ok {
		if want, known := ti.users[user]; !known || want != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="imgfs test token issuer"`)
			http.Error(w, `{"details":"incorrect username or password"}`, http.StatusUnauthorized)
			return
		}
		subject = user
	}
	type access struct {
		Type    string   `json:"type"`
		Name    string   `json:"name"`
		Actions []string `json:"actions"`
	}
	var granted []access
	for _, scope := range r.URL.Query()["scope"] {
		for _, s := range strings.Split(scope, " ") {
			parts := strings.Split(s, ":")
			if len(parts) != 3 || parts[0] != "repository" {
				continue
			}
			if subject == "" && !strings.HasPrefix(parts[1], "public/") {
				continue
			}
			granted = append(granted, access{Type: "repository", Name: parts[1], Actions: []string{"pull"}})
		}
	}
	now := time.Now()
	lifetime := time.Duration(ti.lifetime.Load())
	claims := map[string]any{
		"iss": ti.Issuer, "sub": subject, "aud": ti.Service,
		"iat": now.Unix(), "nbf": now.Unix() - 1,
		"exp":    now.Add(lifetime - registryLeeway).Unix(),
		"jti":    fmt.Sprintf("t%d", ti.issued.Add(1)),
		"access": granted,
	}
	token, err := ti.sign(claims)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"token": token, "access_token": token, "expires_in": int(lifetime.Seconds()), "issued_at": now.UTC().Format(time.RFC3339)})
}

// sign makes a JWS (ES256) carrying the signing certificate in x5c, which
// the registry verifies against its rootcertbundle.
func (ti *TokenIssuer) sign(claims map[string]any) (string, error) {
	header, err := json.Marshal(map[string]any{"typ": "JWT", "alg": "ES256", "x5c": []string{base64.StdEncoding.EncodeToString(ti.certDER)}})
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	sum := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, ti.key, sum[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signing + "." + enc.EncodeToString(sig), nil
}
