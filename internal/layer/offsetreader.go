package layer

import (
	"context"
	"errors"
	"io"

	"github.com/imgfs/imgfs/internal/blobio"
)

// offsetReader feeds archive/tar and counts every byte it consumes, so the
// indexer knows exact stream offsets. It is an io.Seeker, which makes
// archive/tar skip file data with Seek instead of reading it: over a stream
// the skip reads and discards, over a Source it reads nothing at all.
//
// To find where an entry's headers start, the indexer arms the reader
// before tar.Reader.Next. Inside Next, archive/tar first skips the previous
// entry's data (Seek, then a 1-byte read) and padding (a read shorter than
// a block), and then reads the first header block with a read of at least
// 512 bytes. The first such read after arming is where the headers start.
//
// From there on it also notes whether any byte read is not zero, so that
// the indexer can tell a stream that ends at an entry boundary, or within
// the all-zero end-of-archive blocks, from one that ends after an entry's
// first header (see indexTar).
type offsetReader struct {
	pos     int64
	mark    int64 // -1 until the first block-sized read after arm
	headers bool  // a byte read since mark is not zero

	r io.Reader // stream mode

	ctx       context.Context // range mode
	src       blobio.ReaderAt
	size      int64
	readahead int
	buf       []byte
	bufOff    int64
	fetched   int64
}

func newStreamOffsetReader(r io.Reader) *offsetReader {
	return &offsetReader{r: r, mark: -1}
}

func newRangeOffsetReader(ctx context.Context, src blobio.ReaderAt, size int64, readahead int) *offsetReader {
	if readahead < 512 {
		readahead = 512
	}
	return &offsetReader{ctx: ctx, src: src, size: size, readahead: readahead, mark: -1}
}

func (o *offsetReader) arm() { o.mark, o.headers = -1, false }

// headerStart is where the headers read since arm began.
func (o *offsetReader) headerStart() int64 {
	if o.mark >= 0 {
		return o.mark
	}
	return o.pos
}

func (o *offsetReader) Read(p []byte) (int, error) {
	if len(p) >= blockSize && o.mark < 0 {
		o.mark = o.pos
	}
	var n int
	var err error
	if o.src == nil {
		n, err = o.r.Read(p)
	} else {
		n, err = o.readRange(p)
	}
	o.pos += int64(n)
	if o.mark >= 0 && !o.headers {
		o.headers = !allZero(p[:n])
	}
	return n, err
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func (o *offsetReader) readRange(p []byte) (int, error) {
	if o.pos >= o.size {
		return 0, io.EOF
	}
	if o.pos < o.bufOff || o.pos >= o.bufOff+int64(len(o.buf)) {
		n := max(len(p), o.readahead)
		if rem := o.size - o.pos; int64(n) > rem {
			n = int(rem)
		}
		if cap(o.buf) < n {
			o.buf = make([]byte, n)
		}
		o.buf = o.buf[:n]
		m, err := o.src.ReadAt(o.ctx, o.buf, o.pos)
		o.fetched += int64(m)
		o.buf, o.bufOff = o.buf[:m], o.pos
		if m == 0 {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
	}
	return copy(p, o.buf[o.pos-o.bufOff:]), nil
}

var errSeek = errors.New("layer: seek backwards or from the end")

func (o *offsetReader) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += o.pos
	default:
		return o.pos, errSeek
	}
	if off < o.pos {
		if o.src == nil || off < 0 {
			return o.pos, errSeek
		}
		o.pos = off
		return off, nil
	}
	if o.src != nil {
		o.pos = off
		return off, nil
	}
	n, err := io.CopyN(io.Discard, o.r, off-o.pos)
	o.pos += n
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return o.pos, err
}

const blockSize = 512
