package fetch

import (
	"net"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxLowWater caps the socket's receive low-water mark: a body Read
// sleeps until this many bytes are queued (or the body's end is), so
// that a large Read takes one wakeup and one syscall instead of one per
// segment the registry writes.
//
// Only the body's own bytes are waited for: the mark never exceeds what
// the Read asked for or what is left of the body, so it cannot wait for
// bytes the registry will not send. It costs no latency where the cache
// reads whole chunks, since a chunk is of no use until all of it is in.
const maxLowWater = 1 << 20

// lowWater sets SO_RCVLOWAT on a plain-TCP connection for the body being
// read from it. TLS connections are left alone: their reads are of
// records, not of the body's bytes.
type lowWater struct {
	raw syscall.RawConn
	mu  sync.Mutex // the reading goroutine and the idle timer both set it
	set int        // the mark last set; 1 is the kernel's default
}

// newLowWater returns a lowWater for conn, or nil when conn is not plain
// TCP.
func newLowWater(conn net.Conn) *lowWater {
	tcp, ok := conn.(*net.TCPConn)
	if !ok {
		return nil
	}
	raw, err := tcp.SyscallConn()
	if err != nil {
		return nil
	}
	return &lowWater{raw: raw, set: 1}
}

// before sets the mark for a Read of want bytes when left bytes of the
// body remain.
func (w *lowWater) before(want int, left int64) {
	w.setMark(int(min(int64(want), left, maxLowWater)))
}

// reset restores the default mark, which wakes a reader waiting under
// the old one if any byte is queued. It must run before the connection
// serves another response: the transport reuses it.
func (w *lowWater) reset() { w.setMark(1) }

// queued reports whether any byte waits in the socket's receive queue.
func (w *lowWater) queued() bool {
	n := 0
	w.raw.Control(func(fd uintptr) {
		n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	})
	return n > 0
}

func (w *lowWater) setMark(v int) {
	v = max(v, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if v == w.set {
		return
	}
	var err error
	w.raw.Control(func(fd uintptr) {
		err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT, v)
	})
	if err == nil {
		w.set = v
	}
}
