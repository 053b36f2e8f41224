package testregistry

import (
	"context"
	"sync"
	"time"
)

// tokenBucket limits a byte rate shared by every response of a Proxy, like
// one link in front of the registry. It holds no data: writers ask it when
// they may send the next chunk and wait, so memory does not grow with the
// amount throttled.
//
// It works by reservation: reserve takes n tokens at once, letting the
// balance go negative, and returns how long the caller must wait for the
// balance to have covered them. Concurrent writers thus queue in the
// order they reserved.
type tokenBucket struct {
	rate  float64 // bytes per second
	burst int64   // the most tokens that accumulate while idle, and the largest chunk

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// newTokenBucket returns a bucket for bytesPerSecond, full. The burst is a
// twentieth of a second's worth, between 4 KiB and 256 KiB: small enough
// that the rate holds over short spans, large enough that waiting stays
// cheap.
func newTokenBucket(bytesPerSecond int64, now time.Time) *tokenBucket {
	burst := min(max(bytesPerSecond/20, 4<<10), 256<<10)
	return &tokenBucket{rate: float64(bytesPerSecond), burst: burst, tokens: float64(burst), last: now}
}

// reserve takes n tokens (n <= burst) at time now and returns how long to
// wait before sending n bytes.
func (b *tokenBucket) reserve(n int64, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.After(b.last) {
		b.tokens = min(b.tokens+now.Sub(b.last).Seconds()*b.rate, float64(b.burst))
		b.last = now
	}
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// wait blocks until n bytes may be sent, the context ends or closing is
// closed.
func (b *tokenBucket) wait(ctx context.Context, closing <-chan struct{}, n int64) error {
	d := b.reserve(n, time.Now())
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-closing:
		return errProxyClosed
	}
}

// SetBandwidth limits the proxy's response bodies, all requests together,
// to bytesPerSecond, like a slow link between client and registry. Zero or
// less removes the limit. Requests already running follow the new limit
// from their next write.
func (p *Proxy) SetBandwidth(bytesPerSecond int64) {
	if bytesPerSecond <= 0 {
		p.bandwidth.Store(nil)
		return
	}
	p.bandwidth.Store(newTokenBucket(bytesPerSecond, time.Now()))
}
