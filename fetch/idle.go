package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/imgfs/imgfs/fetch/sockmark"
	"github.com/imgfs/imgfs/internal/errdefs"
)

// idleTransport gives every response an idle timeout. The base transport's
// ResponseHeaderTimeout bounds the wait for headers; this turns its timeout
// into a stallError and wraps the body so that a Read which waits longer
// than timeout for the registry cancels the request. The timer runs only
// while a Read waits: between Reads the consumer's pace is its own.
type idleTransport struct {
	base    http.RoundTripper
	timeout time.Duration
}

func (t *idleTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	ctx, conn := sockmark.TraceConn(ctx)
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		if req.Context().Err() == nil && isStall(err) {
			return nil, &stallError{host: req.URL.Host, waiting: "no response", after: t.timeout}
		}
		return nil, err
	}
	body := &idleBody{
		body:    resp.Body,
		timeout: t.timeout,
		cancel:  cancel,
		stall:   &stallError{host: req.URL.Host, waiting: "no bytes", after: t.timeout},
	}
	var mark *sockmark.Mark
	if resp.ProtoMajor == 1 {
		if mb := sockmark.NewBody(resp.Body, conn(), resp.ContentLength); mb != nil {
			body.body, mark = mb, mb.Mark()
		}
	}
	body.timer = time.AfterFunc(time.Hour, func() {
		// Bytes queued under the low-water mark are not silence: wake the
		// Read with them and let the next Read wait afresh.
		if mark != nil && mark.Queued() {
			mark.Reset()
			return
		}
		body.stalled.Store(true)
		cancel()
	})
	body.timer.Stop()
	resp.Body = body
	return resp, nil
}

// isStall reports whether a round trip failed on a timeout that is the
// registry's silence (no headers, no TLS handshake) rather than a failure
// to dial, which oras' retry policy rightly retries.
func isStall(err error) bool {
	var netErr net.Error
	if !errors.As(err, &netErr) || !netErr.Timeout() {
		return false
	}
	var opErr *net.OpError
	return !errors.As(err, &opErr) || opErr.Op != "dial"
}

// idleBody cancels its request when one Read waits longer than timeout
// with no byte arrived. Over plain HTTP/1.1 with a known length it reads
// under a socket low-water mark (package sockmark).
type idleBody struct {
	body    io.ReadCloser
	timeout time.Duration
	timer   *time.Timer
	cancel  context.CancelFunc
	stalled atomic.Bool
	stall   error
}

func (b *idleBody) Read(p []byte) (int, error) {
	if b.stalled.Load() {
		return 0, b.stall
	}
	b.timer.Reset(b.timeout)
	n, err := b.body.Read(p)
	b.timer.Stop()
	if b.stalled.Load() {
		return n, b.stall
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	err := b.body.Close()
	b.cancel()
	return err
}

// stallError says a registry sent nothing for the idle timeout. It wraps
// errdefs.ErrFetchTimeout: the registry may answer a later request.
type stallError struct {
	host    string
	waiting string
	after   time.Duration
}

func (e *stallError) Error() string {
	return fmt.Sprintf("registry %s stalled: %s for %s", e.host, e.waiting, e.after)
}

func (e *stallError) Unwrap() error { return errdefs.ErrFetchTimeout }
