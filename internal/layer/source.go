package layer

import (
	"context"
	"io"

	"github.com/imgfs/imgfs/internal/blobio"
)

// CheckedSource is a Source that wants to know when bytes it returned fail
// the digest the index or TOC records for them, such as the cache's
// RangeReader, which then drops its copy of them and fetches them afresh
// on a later read instead of serving the same bad bytes again.
type CheckedSource interface {
	blobio.ReaderAt
	// ReadCheckedAt reads all of p from off, or fails, and returns check's
	// verdict on it.
	ReadCheckedAt(ctx context.Context, p []byte, off int64, check func([]byte) error) (int, error)
}

// readChecked reads all of p from off and checks it, through the source's
// own ReadCheckedAt when it has one.
func readChecked(ctx context.Context, src blobio.ReaderAt, p []byte, off int64, check func([]byte) error) error {
	if cs, ok := src.(CheckedSource); ok {
		n, err := cs.ReadCheckedAt(ctx, p, off, check)
		return fullRead(n, len(p), err)
	}
	n, err := src.ReadAt(ctx, p, off)
	if err := fullRead(n, len(p), err); err != nil {
		return err
	}
	return check(p)
}

// fullRead turns a read of n of want bytes into an error unless it was
// whole; io.EOF right at the end of a whole read is no error.
func fullRead(n, want int, err error) error {
	switch {
	case err != nil && err != io.EOF:
		return err
	case n < want:
		return io.ErrUnexpectedEOF
	}
	return nil
}
