package layerview

import (
	"context"
	"io"
)

type checkpointReader struct{}

func newCheckpointReader(idx *Index, src Source) *checkpointReader { return nil }

func (c *checkpointReader) open(ctx context.Context, off int64) (io.Reader, error) { return nil, nil }
func (c *checkpointReader) release(r io.Reader, off int64)                         {}
