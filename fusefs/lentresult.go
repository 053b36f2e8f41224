package fusefs

import "github.com/hanwen/go-fuse/v2/fuse"

// lentResult is a READ reply made of slices a LendingReader lent. go-fuse
// writes slices with one writev, without gathering them into its own
// buffer, and calls Done once the reply is written or dropped.
type lentResult struct {
	slices   [][]byte
	size     int
	giveBack func()
}

func (r *lentResult) Size() int { return r.size }

// Slices is what go-fuse writes when the result offers it.
func (r *lentResult) Slices() ([][]byte, fuse.Status) { return r.slices, fuse.OK }

// Bytes gathers the slices into buf, for a go-fuse path that does not
// take slices.
func (r *lentResult) Bytes(buf []byte) ([]byte, fuse.Status) {
	buf = buf[:0]
	for _, s := range r.slices {
		buf = append(buf, s...)
	}
	return buf, fuse.OK
}

func (r *lentResult) Done() { r.giveBack() }
