package fetch

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestTrickleUnderTheMarkIsNotAStall: a registry that sends a body in
// small pieces, each well within the idle timeout, while a Read waits for
// more than the timeout's worth: the bytes queued under the mark are
// progress, so the body arrives whole.
func TestTrickleUnderTheMarkIsNotAStall(t *testing.T) {
	blob := bytes.Repeat([]byte("t"), 256<<10)
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	const piece = 4 << 10
	remote, _ := newTestRemote(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(blob)))
		for off := 0; off < len(blob); off += piece {
			w.Write(blob[off : off+piece])
			w.(http.Flusher).Flush()
			time.Sleep(10 * time.Millisecond)
		}
	}), RemoteOptions{TransportOptions: TransportOptions{IdleTimeout: 300 * time.Millisecond}})
	rc, err := remote.Fetch(callContext(t), desc)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got := make([]byte, len(blob))
	if _, err := io.ReadFull(rc, got); err != nil {
		t.Fatalf("a body trickled in %d-byte pieces every 10 ms: %v", piece, err)
	}
	if !bytes.Equal(got, blob) {
		t.Error("the body's bytes differ")
	}
}

// TestMarkedBodyLeavesTheConnectionReusable reads a large body under the
// mark and then a short answer on the same connection: the mark left
// behind would otherwise keep the short answer's headers from waking the
// transport until the idle timeout.
func TestMarkedBodyLeavesTheConnectionReusable(t *testing.T) {
	big := bytes.Repeat([]byte("b"), 3<<20+12345)
	small := []byte("ten bytes!")
	descOf := func(b []byte) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(b), Size: int64(len(b))}
	}
	var mu sync.Mutex
	conns := map[string]bool{} // the clients' addresses
	remote, _ := newTestRemote(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conns[r.RemoteAddr] = true
		mu.Unlock()
		body := small
		if r.URL.Path == "/v2/r/blobs/"+descOf(big).Digest.String() {
			body = big
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Write(body)
	}), RemoteOptions{})
	ctx := callContext(t)
	var reused []bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = append(reused, i.Reused) }})
	for _, b := range [][]byte{big, small, big, small} {
		rc, err := remote.Fetch(ctx, descOf(b))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("%d-byte body: read %d bytes, %v", len(b), len(got), err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(conns) != 1 {
		t.Errorf("%d connections for 4 requests (reused: %v); the test needs them on one", len(conns), reused)
	}
}
