package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/oci"
)

// Layer serves the contents of the regular files in one layer's index.
// Implementations are safe for concurrent use.
type Layer interface {
	// Index is the layer's file index.
	Index() *Index
	// ReadFile reads the content of entry i (an index into
	// Index().Entries) at off, as io.ReaderAt does: len(p) bytes, or fewer
	// with io.EOF at the end of the file. Bytes that fail verification are
	// never returned: the error wraps ErrCorrupt.
	ReadFile(ctx context.Context, i int, p []byte, off int64) (int, error)
}

// Unsettled is implemented by a Layer whose files may start failing
// later: one served through an index taken on trust, still to be checked
// against the layer's verified bytes. While Unsettled returns true, the
// filesystem must not let the kernel keep a file's pages from one open to
// the next, so that a later refusal reaches every new reader.
type Unsettled interface {
	Unsettled() bool
}

// Errors from ReadFile for entries that have no bytes to serve.
var (
	ErrNotRegular = errors.New("layer: not a regular file")
	ErrBadEntry   = errors.New("layer: bad entry")
)

// NewLayer returns the Layer for an index built by BuildTar, WalkTar,
// BuildGzip or BuildZstd, reading the layer blob from src. A broken index
// (see Index.Check) is refused with an error wrapping ErrBroken.
func NewLayer(idx *Index, src blobio.ReaderAt) (Layer, error) {
	if err := idx.Check(); err != nil {
		return nil, err
	}
	switch idx.Format {
	case oci.FormatTar:
		return &streamLayer{idx: idx, open: func(ctx context.Context, off int64) (io.Reader, error) {
			return &sourceReader{ctx: ctx, src: src, off: off}, nil
		}, direct: src}, nil
	case oci.FormatGzip, oci.FormatZstd:
		if len(idx.Checkpoints) == 0 {
			return nil, fmt.Errorf("layer: %s index has no checkpoints", idx.Format)
		}
		c := newCheckpointReader(idx, src)
		return &streamLayer{idx: idx, open: c.open, release: c.release}, nil
	}
	return nil, fmt.Errorf("layer: no stream layer for format %s", idx.Format)
}

// streamLayer serves files from the uncompressed tar stream, which open
// returns positioned at an offset. release hands a reader back for reuse
// by a later read that continues where it stopped.
type streamLayer struct {
	idx     *Index
	open    func(ctx context.Context, off int64) (io.Reader, error)
	release func(r io.Reader)
	direct  blobio.ReaderAt // uncompressed blob: contiguous files are read in one ReadAt
}

func (l *streamLayer) Index() *Index { return l.idx }

func (l *streamLayer) ReadFile(ctx context.Context, i int, p []byte, off int64) (int, error) {
	e, err := regularEntry(l.idx, i, off)
	if err != nil {
		return 0, err
	}
	if off >= e.Size {
		return 0, io.EOF
	}
	want := p[:min(int64(len(p)), e.Size-off)]
	var n int
	switch {
	case e.Sparse:
		n, err = l.readSparse(ctx, e, want, off)
	case l.direct != nil:
		n, err = l.direct.ReadAt(ctx, want, e.DataOffset+off)
	default:
		n, err = l.readStream(ctx, want, e.DataOffset+off)
	}
	if n == len(want) {
		err = nil
	} else if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return n, fmt.Errorf("read %q at %d: %w", e.Name, off, err)
	}
	if len(want) < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (l *streamLayer) readStream(ctx context.Context, p []byte, at int64) (int, error) {
	r, err := l.open(ctx, at)
	if err != nil {
		return 0, err
	}
	n, err := io.ReadFull(r, p)
	if err == nil && l.release != nil {
		l.release(r)
	}
	return n, err
}

// readSparse reads a sparse file through archive/tar from its header,
// which expands the holes.
func (l *streamLayer) readSparse(ctx context.Context, e *Entry, p []byte, off int64) (int, error) {
	r, err := l.open(ctx, e.Offset)
	if err != nil {
		return 0, err
	}
	tr := tar.NewReader(r)
	if _, err := tr.Next(); err != nil {
		return 0, err
	}
	if _, err := io.CopyN(io.Discard, tr, off); err != nil {
		return 0, err
	}
	return io.ReadFull(tr, p)
}

// regularEntry checks a ReadFile call's arguments: entry i must be a
// regular file that is not bad, and off not negative.
func regularEntry(idx *Index, i int, off int64) (*Entry, error) {
	if i < 0 || i >= len(idx.Entries) {
		return nil, fmt.Errorf("layer: no entry %d", i)
	}
	e := &idx.Entries[i]
	if e.Bad != "" {
		return nil, fmt.Errorf("%w: %q: %s", ErrBadEntry, e.Name, e.Bad)
	}
	if e.Type != TypeRegular {
		return nil, fmt.Errorf("%w: %q is a %s", ErrNotRegular, e.Name, e.Type)
	}
	if off < 0 {
		return nil, fmt.Errorf("layer: negative offset %d", off)
	}
	return e, nil
}

// sourceReader reads a Source sequentially from off.
type sourceReader struct {
	ctx context.Context
	src blobio.ReaderAt
	off int64
}

func (r *sourceReader) Read(p []byte) (int, error) {
	n, err := r.src.ReadAt(r.ctx, p, r.off)
	r.off += int64(n)
	if n > 0 && err == io.EOF {
		err = nil
	}
	return n, err
}
