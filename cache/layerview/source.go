package layerview

import "context"

// Source is random access to a blob's bytes, such as the cache's Reader.
// ReadAt follows io.ReaderAt: it returns len(p) bytes, or fewer together
// with an error (io.EOF at the end of the blob).
type Source interface {
	ReadAt(ctx context.Context, p []byte, off int64) (int, error)
}

// SourceFunc adapts a function to a Source.
type SourceFunc func(ctx context.Context, p []byte, off int64) (int, error)

// ReadAt calls f.
func (f SourceFunc) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	return f(ctx, p, off)
}
