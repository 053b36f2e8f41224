package testregistry

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Fault is a failure the Proxy injects. Use the values None, Corrupt,
// Stall, Reset and Down, or Status(code), refined with On, After and Times;
// the refinements return a copy, so the package values never change.
//
// Corrupt, Stall and Reset act on response bodies and so apply only to GET
// requests; Status and Down apply to requests of any method. Every fault
// applies to all matching requests (paths containing the On substring, or
// every path) until replaced, or to the first n of them with Times(n).
type Fault struct {
	kind     faultKind
	code     int
	match    string
	after    int64
	afterSet bool
	times    int
}

type faultKind int

const (
	faultNone faultKind = iota
	faultCorrupt
	faultStall
	faultReset
	faultStatus
	faultDown
)

var (
	// None proxies every request unchanged.
	None = Fault{}
	// Corrupt flips one byte of the response body (by default the one in the
	// middle), keeping the length, so only digest verification can catch it.
	Corrupt = Fault{kind: faultCorrupt}
	// Stall sends the headers and the first part of the body (by default
	// half) and then sends nothing more until the client gives up or the
	// proxy is closed, like a registry whose connection hangs.
	Stall = Fault{kind: faultStall}
	// Reset sends the headers and the first part of the body (by default
	// half) and then aborts the connection, like a connection dropped
	// mid-transfer.
	Reset = Fault{kind: faultReset}
	// Down closes each connection as soon as a request arrives, without a
	// response, like a registry that has gone away.
	Down = Fault{kind: faultDown}
)

// Status answers matching requests with the given HTTP status and a
// registry-style JSON error body, without contacting the registry (for
// example 503, 500 or 429).
func Status(code int) Fault { return Fault{kind: faultStatus, code: code} }

// On scopes the fault to request paths containing substr, such as one
// blob's digest, "/blobs/" or "/manifests/".
func (f Fault) On(substr string) Fault {
	f.match = substr
	return f
}

// After sets how many body bytes Corrupt, Stall and Reset let through
// unharmed: Corrupt flips the byte at offset n, Stall and Reset act after n
// bytes. Without After they act at half the Content-Length (0 when the
// length is unknown). A body shorter than n is not harmed.
func (f Fault) After(n int64) Fault {
	f.after, f.afterSet = n, true
	return f
}

// Times limits the fault to the first n matching requests after SetFault;
// later requests pass unharmed. It models transient failures that a retry
// should overcome.
func (f Fault) Times(n int) Fault {
	f.times = n
	return f
}

// String describes the fault for test logs.
func (f Fault) String() string {
	names := [...]string{"None", "Corrupt", "Stall", "Reset", "Status", "Down"}
	s := names[f.kind]
	if f.kind == faultStatus {
		s = fmt.Sprintf("Status(%d)", f.code)
	}
	if f.match != "" {
		s += fmt.Sprintf(".On(%q)", f.match)
	}
	if f.afterSet {
		s += fmt.Sprintf(".After(%d)", f.after)
	}
	if f.times > 0 {
		s += fmt.Sprintf(".Times(%d)", f.times)
	}
	return s
}

// actsOnBody reports whether the fault alters a response body rather than
// replacing the response.
func (f Fault) actsOnBody() bool {
	return f.kind == faultCorrupt || f.kind == faultStall || f.kind == faultReset
}

// errInjectedReset is what the faulty body returns to make the proxy abort
// the connection.
var errInjectedReset = errors.New("testregistry: injected connection reset")

// errProxyClosed ends a stall when the proxy shuts down.
var errProxyClosed = errors.New("testregistry: proxy closed")

// faultyBody applies a body fault to a response body as it is read.
type faultyBody struct {
	io.ReadCloser
	f       Fault
	at      int64 // offset where the fault acts
	pos     int64
	ctx     context.Context
	closing <-chan struct{}
}

// newFaultyBody wraps body, of length size (-1 if unknown), with fault f.
func newFaultyBody(body io.ReadCloser, f Fault, size int64, ctx context.Context, closing <-chan struct{}) io.ReadCloser {
	at := f.after
	if !f.afterSet {
		at = max(size/2, 0)
	}
	return &faultyBody{ReadCloser: body, f: f, at: at, ctx: ctx, closing: closing}
}

func (b *faultyBody) Read(p []byte) (int, error) {
	if b.f.kind == faultCorrupt {
		n, err := b.ReadCloser.Read(p)
		if b.at >= b.pos && b.at < b.pos+int64(n) {
			p[b.at-b.pos] ^= 0xff
		}
		b.pos += int64(n)
		return n, err
	}
	if b.pos >= b.at {
		if b.f.kind == faultReset {
			return 0, errInjectedReset
		}
		// Stall: everything before this point has been flushed to the
		// client; now wait for something that must end it, never forever.
		select {
		case <-b.ctx.Done():
			return 0, b.ctx.Err()
		case <-b.closing:
			return 0, errProxyClosed
		}
	}
	// Stop reads exactly at the fault offset so that the client receives
	// precisely the promised prefix.
	if rest := b.at - b.pos; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := b.ReadCloser.Read(p)
	b.pos += int64(n)
	return n, err
}
