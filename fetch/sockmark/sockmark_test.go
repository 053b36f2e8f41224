package sockmark

import (
	"io"
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// mark reads the connection's SO_RCVLOWAT from the kernel.
func mark(t *testing.T, conn *net.TCPConn) int {
	t.Helper()
	raw, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	raw.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT) })
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

func TestMarkNeverExceedsTheReadOrTheBody(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			defer c.Close()
			io.Copy(io.Discard, c)
		}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	w := For(conn)
	if w == nil {
		t.Fatal("no mark for a TCP connection")
	}
	tests := []struct {
		want int
		left int64
		mark int
	}{
		{1 << 20, 300 << 10, 300 << 10}, // the body's end is nearer
		{4 << 10, 1 << 30, 4 << 10},     // the Read asks for less
		{8 << 20, 1 << 30, Max},         // capped
		{0, 5, 1},                       // never below the default
	}
	for _, tt := range tests {
		w.Before(tt.want, tt.left)
		if got := mark(t, conn.(*net.TCPConn)); got != tt.mark {
			t.Errorf("before(%d, %d): mark %d, want %d", tt.want, tt.left, got, tt.mark)
		}
	}
	w.Before(64<<10, 1<<20)
	w.Reset()
	if got := mark(t, conn.(*net.TCPConn)); got != 1 {
		t.Errorf("after reset: mark %d, want 1", got)
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if For(a) != nil {
		t.Error("a mark for a connection that is not TCP")
	}
}
