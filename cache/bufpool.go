package cache

import (
	"sync"

	"golang.org/x/sys/unix"
)

// bufPool hands out chunk buffers from a fixed set of slots carved from
// one anonymous mapping, kept for the life of the process. A sync.Pool is
// emptied by every garbage collection, and each 1 MiB buffer made anew
// is fresh memory: page faults, and on VMs that hand free memory back to
// the host a host fault per page (see directio.go). The mapping asks for
// transparent huge pages, which also makes pinning a buffer for an
// O_DIRECT write, and the hasher's and copies' TLB misses, cheaper.
// Beyond the slots, or for a chunk larger than a slot, buffers come from
// the heap and go back to it.
type bufPool struct {
	slotSize int
	slots    int

	once sync.Once
	mem  []byte // the mapping; nil if it could not be made

	mu   sync.Mutex
	free []int  // slots to hand out again, most recently returned last
	made int    // slots carved so far
	out  []bool // by slot: handed out and not yet returned
}

// chunkPool serves every chunk buffer of the process: maxHeld per blob
// being read, plus those in flight, fit in its 64 slots for a couple of
// blobs at once.
var chunkPool = &bufPool{slotSize: DefaultChunkSize, slots: 64}

// hugePage is the size transparent huge pages come in on x86-64.
const hugePage = 2 << 20

func (p *bufPool) init() {
	p.out = make([]bool, p.slots)
	if raceEnabled {
		// The race detector watches the heap only: there the slots'
		// hand-offs between fetches, the hasher and reads stay checked.
		p.mem = make([]byte, p.slotSize*p.slots)
		return
	}
	size := p.slotSize*p.slots + hugePage
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return // the heap serves every buffer
	}
	_ = unix.Madvise(mem, unix.MADV_HUGEPAGE) // best effort
	off := 0
	if rem := int(uintptrOf(mem) % hugePage); rem != 0 {
		off = hugePage - rem
	}
	p.mem = mem[off : off+p.slotSize*p.slots]
}

// get returns a buffer of n bytes.
func (p *bufPool) get(n int64) *[]byte {
	p.once.Do(p.init)
	if int(n) <= p.slotSize && p.mem != nil {
		p.mu.Lock()
		i := -1
		switch {
		case len(p.free) > 0:
			i = p.free[len(p.free)-1]
			p.free = p.free[:len(p.free)-1]
		case p.made < p.slots:
			i = p.made
			p.made++
		}
		if i >= 0 {
			p.out[i] = true
		}
		p.mu.Unlock()
		if i >= 0 {
			b := p.mem[i*p.slotSize : i*p.slotSize+int(n) : (i+1)*p.slotSize]
			return &b
		}
	}
	b := make([]byte, n)
	return &b
}

// Put takes back a buffer from get. A slot goes back on the free list,
// once however often it is put; a heap buffer is left to the garbage
// collector.
func (p *bufPool) Put(bp *[]byte) {
	i, ok := p.slotOf(*bp)
	if !ok {
		return
	}
	p.mu.Lock()
	if p.out[i] {
		p.out[i] = false
		p.free = append(p.free, i)
	}
	p.mu.Unlock()
}

// slotOf returns the slot b was cut from, if any.
func (p *bufPool) slotOf(b []byte) (int, bool) {
	if p.mem == nil || cap(b) != p.slotSize {
		return 0, false
	}
	base, at := uintptrOf(p.mem), uintptrOf(b[:1])
	if at < base || at >= base+uintptr(len(p.mem)) || (at-base)%uintptr(p.slotSize) != 0 {
		return 0, false
	}
	return int((at - base) / uintptr(p.slotSize)), true
}
