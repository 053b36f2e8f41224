package testregistry

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestTokenBucketGrantsRateTimesTimePlusBurst drives the bucket on a
// simulated clock: whatever the chunk sizes, the bytes granted by time T
// never exceed rate*T + burst, and a writer that always waits what it is
// told gets within one chunk of rate*T.
func TestTokenBucketGrantsRateTimesTimePlusBurst(t *testing.T) {
	const rate = 20_000_000
	start := time.Unix(0, 0)
	b := newTokenBucket(rate, start)
	if b.burst != 256<<10 {
		t.Fatalf("burst %d, want 256 KiB at 20 MB/s", b.burst)
	}
	now := start
	var granted int64
	sizes := []int64{1, 4096, 32 << 10, b.burst, 1000, 77777}
	for i := 0; i < 20000; i++ {
		n := sizes[i%len(sizes)]
		now = now.Add(b.reserve(n, now)) // wait, then send
		granted += n
		elapsed := now.Sub(start).Seconds()
		if limit := int64(rate*elapsed) + b.burst; granted > limit+1 {
			t.Fatalf("after %d chunks: %d bytes granted by %.6fs, more than rate*T+burst = %d", i+1, granted, elapsed, limit)
		}
	}
	elapsed := now.Sub(start).Seconds()
	if floor := int64(rate*elapsed) - b.burst; granted < floor {
		t.Fatalf("%d bytes granted in %.3fs, want at least %d: the bucket throttles below its rate", granted, elapsed, floor)
	}
	// An idle spell refills at most the burst.
	later := now.Add(time.Hour)
	if d := b.reserve(b.burst, later); d != 0 {
		t.Fatalf("a burst after an hour idle waits %v", d)
	}
	if d := b.reserve(b.burst, later); d <= 0 {
		t.Fatal("a second burst at once does not wait: idle time piled up more than one burst")
	}
}

// TestProxyBandwidthLimitsBodies reads a blob through a limited proxy and
// checks, at every read, that the bytes received so far are at most what
// the rate allows in the time elapsed (plus one burst): noise on the
// machine can only make reads later, never earlier, so the bound holds on
// any machine. The bytes must also arrive intact, and removing the limit
// must work.
func TestProxyBandwidthLimitsBodies(t *testing.T) {
	_, p, desc, want := proxyFixture(t)
	const rate = 4 << 20
	p.SetBandwidth(rate)
	burst := p.bandwidth.Load().burst
	start := time.Now()
	resp, err := http.Get(blobURL(p.Host(), "proxied", desc.Digest))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got bytes.Buffer
	buf := make([]byte, 8<<10)
	for {
		n, err := resp.Body.Read(buf)
		got.Write(buf[:n])
		elapsed := time.Since(start).Seconds()
		if limit := int64(rate*elapsed) + burst; int64(got.Len()) > limit {
			t.Fatalf("%d bytes after %.3fs at %d B/s: over the limit of %d", got.Len(), elapsed, rate, limit)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatal("throttled body differs from the blob")
	}
	if p.BlobBytes() != int64(len(want)) {
		t.Errorf("BlobBytes %d, want %d", p.BlobBytes(), len(want))
	}

	// The limit applies to all requests together: two at once get no
	// more than one would.
	p.ResetCounters()
	start = time.Now()
	done := make(chan int64, 2)
	for range 2 {
		go func() {
			resp, err := http.Get(blobURL(p.Host(), "proxied", desc.Digest))
			if err != nil {
				done <- 0
				return
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			done <- n
		}()
	}
	total := <-done + <-done
	if elapsed := time.Since(start).Seconds(); total > int64(rate*elapsed)+burst {
		t.Errorf("two requests got %d bytes in %.3fs at %d B/s shared: the limit is per request, not per link", total, elapsed, rate)
	}
	if total != 2*int64(len(want)) {
		t.Errorf("two requests got %d bytes, want %d", total, 2*len(want))
	}

	p.SetBandwidth(0)
	if p.bandwidth.Load() != nil {
		t.Fatal("SetBandwidth(0) left a limit")
	}
	if _, body := get(t, context.Background(), blobURL(p.Host(), "proxied", desc.Digest), nil); !bytes.Equal(body, want) {
		t.Fatal("unlimited body differs")
	}
}
