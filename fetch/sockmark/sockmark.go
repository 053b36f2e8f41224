// Package sockmark reads HTTP/1.1 bodies over plain TCP under a socket
// receive low-water mark (SO_RCVLOWAT): a large Read then sleeps once and
// returns in one or two syscalls, instead of waking for every segment the
// sender writes, which costs both sides CPU. The registry client's idle
// transport (fetch/idle.go) reads every plain HTTP/1.1 body through it.
package sockmark

import (
	"context"
	"io"
	"net"
	"net/http/httptrace"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Max caps the mark. A Read of a whole chunk then costs one wakeup, and it
// costs no latency where the reader needs the whole chunk anyway.
const Max = 1 << 20

// Mark sets SO_RCVLOWAT on one connection.
type Mark struct {
	raw syscall.RawConn
	mu  sync.Mutex // the reader and an idle timer both set it
	set int        // the mark last set; 1 is the kernel's default
}

// For returns a Mark for conn, or nil when conn is not plain TCP: a TLS
// connection reads records, not the body's bytes.
func For(conn net.Conn) *Mark {
	tcp, ok := conn.(*net.TCPConn)
	if !ok {
		return nil
	}
	raw, err := tcp.SyscallConn()
	if err != nil {
		return nil
	}
	return &Mark{raw: raw, set: 1}
}

// Before sets the mark for a Read of want bytes when left bytes of the
// body remain: never more than either, so that it cannot wait for bytes
// the sender will not send.
func (m *Mark) Before(want int, left int64) {
	m.setMark(int(min(int64(want), left, Max)))
}

// Reset restores the default mark, which wakes a reader waiting under
// the old one if any byte is queued.
func (m *Mark) Reset() { m.setMark(1) }

// Queued reports whether any byte waits in the receive queue.
func (m *Mark) Queued() bool {
	n := 0
	m.raw.Control(func(fd uintptr) {
		n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	})
	return n > 0
}

func (m *Mark) setMark(v int) {
	v = max(v, 1)
	m.mu.Lock()
	defer m.mu.Unlock()
	if v == m.set {
		return
	}
	var err error
	m.raw.Control(func(fd uintptr) {
		err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT, v)
	})
	if err == nil {
		m.set = v
	}
}

// TraceConn returns ctx with a trace that records the connection each
// attempt of a request gets, and a function that returns the last one:
// the connection of the answer the round trip returned.
func TraceConn(ctx context.Context) (context.Context, func() net.Conn) {
	var mu sync.Mutex
	var conn net.Conn
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		mu.Lock()
		conn = info.Conn
		mu.Unlock()
	}})
	return ctx, func() net.Conn {
		mu.Lock()
		defer mu.Unlock()
		return conn
	}
}

// Body reads an HTTP/1.1 body of known length under a Mark.
type Body struct {
	io.ReadCloser
	mark *Mark
	left int64 // bytes not yet read; no mark once 0
}

// NewBody wraps body, of length bytes (negative: unknown), read from
// conn, or returns nil when there is no mark to set: conn is not plain
// TCP, or the length is not known.
func NewBody(body io.ReadCloser, conn net.Conn, length int64) *Body {
	m := For(conn)
	if m == nil || length <= 0 {
		return nil
	}
	return &Body{ReadCloser: body, mark: m, left: length}
}

// Mark returns the body's mark, for an idle timer to find bytes queued
// under it (Queued) and wake the reader with them (Reset).
func (b *Body) Mark() *Mark { return b.mark }

func (b *Body) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return b.ReadCloser.Read(p)
	}
	b.mark.Before(len(p), b.left)
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if b.left <= 0 || err != nil {
		// The transport may already have handed the connection to another
		// request, whose answer can be shorter than the mark.
		b.mark.Reset()
		b.left = 0
	}
	return n, err
}
