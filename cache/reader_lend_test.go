package cache

import (
	"bytes"
	"context"
	"io"
	"testing"
)

// handedOut counts the pool's slots that are out.
func (p *bufPool) handedOut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, out := range p.out {
		if out {
			n++
		}
	}
	return n
}

// TestReadLendLendsHeldChunksUntilGivenBack reads a blob in order with
// reads that straddle chunks: reads of held chunks are lent, as slices
// with the right bytes, and a lent buffer is not reused before it is
// given back, however much is read meanwhile. Once everything is given
// back, the pool has every slot again.
func TestReadLendLendsHeldChunksUntilGivenBack(t *testing.T) {
	const cs = 64 << 10
	s := testStore(t, Options{ChunkSize: cs, Readahead: 4 * cs})
	desc, f := testBlob(t, 48*cs+100)
	out0 := chunkPool.handedOut()
	r := openReader(t, s, desc, f)

	var kept [][]byte // the first lent read, given back only at the end
	var keptAt int64
	var keepGiveBack func()
	lentReads, copiedReads := 0, 0
	buf := make([]byte, cs+cs/2)
	for off := int64(0); off < desc.Size; {
		for i := range buf {
			buf[i] = 0xAA // a lent read must leave buf alone
		}
		lent, giveBack, n, err := r.ReadLend(context.Background(), buf, off)
		if err != nil && err != io.EOF {
			t.Fatalf("ReadLend at %d: %v", off, err)
		}
		want := f.data[off : off+int64(n)]
		if giveBack == nil {
			copiedReads++
			if !bytes.Equal(buf[:n], want) {
				t.Fatalf("copied read at %d: wrong bytes", off)
			}
		} else {
			lentReads++
			if got := bytes.Join(lent, nil); !bytes.Equal(got, want) {
				t.Fatalf("lent read at %d: %d bytes in %d slices, not the blob's %d", off, len(got), len(lent), n)
			}
			if buf[0] != 0xAA {
				t.Fatalf("lent read at %d wrote into p", off)
			}
			if kept == nil {
				kept, keptAt, keepGiveBack = lent, off, giveBack
			} else {
				giveBack()
				giveBack() // only the first call counts
			}
		}
		off += int64(n)
	}
	if lentReads == 0 {
		t.Fatalf("no read was lent (%d copied): a sequential reader's chunks should be held", copiedReads)
	}
	waitComplete(t, s, desc)
	if got := bytes.Join(kept, nil); !bytes.Equal(got, f.data[keptAt:keptAt+int64(len(got))]) {
		t.Error("a lent buffer was reused before it was given back")
	}
	if n := chunkPool.handedOut() - out0; n == 0 {
		t.Error("the lent read's buffers went back to the pool before they were given back")
	}
	keepGiveBack()
	r.Close()
	waitClosed(t, s)
	if n := chunkPool.handedOut() - out0; n != 0 {
		t.Errorf("%d pool slots still out after every lent read was given back", n)
	}
}
