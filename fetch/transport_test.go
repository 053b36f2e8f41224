package fetch

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imgfs/imgfs/internal/errdefs"
	"github.com/imgfs/imgfs/internal/oci"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// testIdleTimeout is short so that stall tests end quickly. The tests
// assert errors, never how long something took.
const testIdleTimeout = 200 * time.Millisecond

// testCallTimeout bounds every call a test makes, so that a missing idle
// timeout shows as a wrong error rather than a hung test.
const testCallTimeout = 20 * time.Second

// newTestRemote starts handler on 127.0.0.1 and returns a Remote for
// repository "r" with tag "t" on it, and the server.
func newTestRemote(t *testing.T, handler http.Handler, opts RemoteOptions) (*Remote, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	opts.PlainHTTP = true
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = testIdleTimeout
	}
	if opts.Username == "" {
		opts.Username, opts.Password = "user", "pass" // keep the developer's docker config out of it
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	r, err := NewRemote(Reference{Registry: host, Repository: "r", Tag: "t"}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r, srv
}

func callContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testCallTimeout)
	t.Cleanup(cancel)
	return ctx
}

// stall blocks a handler until the client goes away or the test ends.
func stall(t *testing.T, w http.ResponseWriter, r *http.Request) {
	w.(http.Flusher).Flush()
	select {
	case <-r.Context().Done():
	case <-t.Context().Done():
	}
}

var testManifest = func() []byte {
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromString("{}"), Size: 2},
	}
	m.SchemaVersion = 2
	data, _ := json.Marshal(m)
	return data
}()

func TestResolveGarbageDockerContentDigest(t *testing.T) {
	manifestDigest := digest.FromBytes(testManifest)
	tests := []struct {
		name    string
		header  []string
		wantIs  error
		wantMsg string // "" for success
	}{
		{"none", nil, nil, ""},
		{"right sha256", []string{manifestDigest.String()}, nil, ""},
		{"right sha512", []string{digest.SHA512.FromBytes(testManifest).String()}, nil, ""},
		{"garbage", []string{"garbage"}, oci.ErrInvalidDigest, `invalid Docker-Content-Digest: invalid digest "garbage"`},
		{"traversal", []string{"sha256:../../../etc/passwd"}, oci.ErrInvalidDigest, "invalid Docker-Content-Digest"},
		{"algorithm only", []string{"sha256:"}, oci.ErrInvalidDigest, "invalid Docker-Content-Digest"},
		{"unknown algorithm", []string{"md5:d41d8cd98f00b204e9800998ecf8427e"}, oci.ErrInvalidDigest, "invalid Docker-Content-Digest"},
		{"uppercase", []string{"sha256:" + strings.ToUpper(manifestDigest.Encoded())}, oci.ErrInvalidDigest, "invalid Docker-Content-Digest"},
		{"short", []string{manifestDigest.String()[:40]}, oci.ErrInvalidDigest, "invalid Docker-Content-Digest"},
		{"two headers", []string{manifestDigest.String(), digest.FromString("other").String()}, nil, "2 Docker-Content-Digest headers"},
		{"another manifest's", []string{digest.FromString("other").String()}, errdefs.ErrDigestMismatch, "expected " + digest.FromString("other").String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			remote, _ := newTestRemote(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", ocispec.MediaTypeImageManifest)
				for _, v := range tt.header {
					w.Header().Add("Docker-Content-Digest", v)
				}
				w.Write(testManifest)
			}), RemoteOptions{})
			desc, data, err := remote.Resolve(callContext(t))
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("Resolve = %v", err)
				}
				if err := oci.CheckDescriptor(desc); err != nil || !bytes.Equal(data, testManifest) {
					t.Errorf("Resolve returned %v (%v), %d bytes", desc, err, len(data))
				}
				return
			}
			if err == nil {
				t.Fatalf("Resolve accepted Docker-Content-Digest %q", tt.header)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %q does not wrap %v", err, tt.wantIs)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.wantMsg) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line saying %q", msg, tt.wantMsg)
			}
		})
	}
}

func TestStalledBodyTimesOut(t *testing.T) {
	blob := bytes.Repeat([]byte("x"), 1<<16)
	blobDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	halfThenStall := func(t *testing.T, w http.ResponseWriter, r *http.Request, status int, body []byte) {
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(status)
		w.Write(body[:len(body)/2])
		stall(t, w, r)
	}
	tests := []struct {
		name    string
		handler func(t *testing.T, w http.ResponseWriter, r *http.Request)
		call    func(ctx context.Context, r *Remote) error
		want    string
	}{
		{"manifest body", func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ocispec.MediaTypeImageManifest)
			halfThenStall(t, w, r, http.StatusOK, testManifest)
		}, resolve, "stalled: no bytes for 200ms"},
		{"manifest headers", func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}, resolve, "stalled: no response for 200ms"},
		{"token body", func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/token" {
				w.Header().Set("Content-Type", "application/json")
				halfThenStall(t, w, r, http.StatusOK, []byte(`{"token":"abcdefghijklmnopqrstuvwxyz"}`))
				return
			}
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/token",service="test"`, r.Host))
			w.WriteHeader(http.StatusUnauthorized)
		}, resolve, "stalled: no bytes for 200ms"},
		{"error body", func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			halfThenStall(t, w, r, http.StatusBadRequest, []byte(`{"errors":[{"code":"DENIED","message":"no"}]}`))
		}, resolve, "unexpected response"},
		{"blob body", func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			halfThenStall(t, w, r, http.StatusOK, blob)
		}, func(ctx context.Context, r *Remote) error {
			rc, err := r.Fetch(ctx, blobDesc)
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.Copy(io.Discard, rc)
			return err
		}, "stalled: no bytes for 200ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			remote, srv := newTestRemote(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				tt.handler(t, w, r)
			}), RemoteOptions{})
			err := tt.call(callContext(t), remote)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error saying %q", err, tt.want)
			}
			if strings.Contains(tt.want, "stalled") {
				host := strings.TrimPrefix(srv.URL, "http://")
				if !strings.Contains(err.Error(), "registry "+host+" stalled") || !errors.Is(err, errdefs.ErrFetchTimeout) {
					t.Errorf("error %q does not name the registry %s or wrap errdefs.ErrFetchTimeout", err, host)
				}
			}
		})
	}
}

func resolve(ctx context.Context, r *Remote) error {
	_, _, err := r.Resolve(ctx)
	return err
}

// TestSlowReaderIsNotAStall reads a body slower than the idle timeout
// while the registry sends it at once: the timer runs only while a Read
// waits on the registry.
func TestSlowReaderIsNotAStall(t *testing.T) {
	blob := bytes.Repeat([]byte("y"), 4<<10)
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	remote, _ := newTestRemote(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(blob)
	}), RemoteOptions{TransportOptions: TransportOptions{IdleTimeout: 50 * time.Millisecond}})
	rc, err := remote.Fetch(callContext(t), desc)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var got []byte
	buf := make([]byte, 1<<10)
	for {
		time.Sleep(100 * time.Millisecond) // twice the idle timeout
		n, err := rc.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", len(got), err)
		}
	}
	if !bytes.Equal(got, blob) {
		t.Errorf("read %d bytes, want %d", len(got), len(blob))
	}
}

func TestPermanentStatusesWrapErrPermanent(t *testing.T) {
	blob := []byte("0123456789abcdefghij")
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	status := func(code int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }
	}
	partial := func(contentRange string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Range", contentRange)
			w.WriteHeader(http.StatusPartialContent)
			w.Write(blob[10:15])
		}
	}
	tests := []struct {
		name      string
		handler   http.HandlerFunc
		whole     bool // Fetch instead of FetchRange(10, 5)
		permanent bool
		wantIs    error
		wantMsg   string
	}{
		{"401", status(http.StatusUnauthorized), false, true, ErrUnauthorized, "401"},
		{"403", status(http.StatusForbidden), false, true, ErrUnauthorized, "403"},
		{"404", status(http.StatusNotFound), false, true, ErrNotFound, "r@" + desc.Digest.String()},
		{"404 whole", status(http.StatusNotFound), true, true, ErrNotFound, "not found"},
		{"416", status(http.StatusRequestedRangeNotSatisfiable), false, true, ErrUnexpectedStatus, "416"},
		{"wrong Content-Range", partial("bytes 0-4/20"), false, true, nil, `Content-Range "bytes 0-4/20" to a request for "bytes 10-14/20"`},
		{"Content-Range total disagrees", partial("bytes 10-14/999"), false, true, nil, "registry says the blob is 999 bytes, descriptor says 20"},
		{"whole blob of another length", func(w http.ResponseWriter, r *http.Request) {
			w.Write(blob[:7])
		}, true, true, nil, "registry sent 7 bytes, descriptor says 20"},

		{"400 is not permanent", status(http.StatusBadRequest), false, false, ErrUnexpectedStatus, "400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			remote, _ := newTestRemote(t, tt.handler, RemoteOptions{})
			var rc io.ReadCloser
			var err error
			if tt.whole {
				rc, err = remote.Fetch(callContext(t), desc)
			} else {
				rc, err = remote.FetchRange(callContext(t), desc, 10, 5)
			}
			if err == nil {
				rc.Close()
				t.Fatal("fetch succeeded")
			}
			if got := errors.Is(err, errdefs.ErrPermanent); got != tt.permanent {
				t.Errorf("error %q: wraps errdefs.ErrPermanent = %v, want %v", err, got, tt.permanent)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %q does not wrap %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not say %q", err, tt.wantMsg)
			}
		})
	}
}

func TestTraceRedactsQuery(t *testing.T) {
	const (
		secret   = "SIGNATURE-SECRET"
		password = "hunter2-password"
	)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("user:"+password))
	blob := []byte("0123456789")
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	mux := http.NewServeMux()
	mux.HandleFunc("/v2/r/blobs/", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		http.Redirect(w, r, "/signed/blob?X-Amz-Signature="+secret+"&X-Amz-Credential=AKIA", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/signed/blob", func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "blob", time.Time{}, bytes.NewReader(blob))
	})
	mux.HandleFunc("/v2/r/manifests/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop?sig="+secret, http.StatusFound)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop?sig="+secret, http.StatusFound)
	})
	var log bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	remote, _ := newTestRemote(t, mux, RemoteOptions{
		TransportOptions: TransportOptions{HTTPTrace: true, Logger: logger},
		Username:         "user", Password: password,
	})

	rc, err := remote.FetchRange(callContext(t), desc, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(got) != "234" {
		t.Fatalf("read %q, %v", got, err)
	}
	_, _, err = remote.Resolve(callContext(t))
	if err == nil {
		t.Fatal("Resolve followed a redirect loop to success")
	}

	trace := log.String()
	if !strings.Contains(trace, "/signed/blob?redacted") || !strings.Contains(trace, "/loop?redacted") {
		t.Errorf("the trace does not show the redirects:\n%s", trace)
	}
	if !strings.Contains(err.Error(), "/loop?redacted") {
		t.Errorf("the error does not show the redirect: %v", err)
	}
	for _, leak := range []string{secret, password, strings.TrimPrefix(basic, "Basic "), "AKIA"} {
		if strings.Contains(trace, leak) {
			t.Errorf("the trace shows %q:\n%s", leak, trace)
		}
		if strings.Contains(err.Error(), leak) {
			t.Errorf("the error shows %q: %v", leak, err)
		}
	}
}
