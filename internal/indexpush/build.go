package indexpush

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/layer/ztoc"
	"github.com/imgfs/imgfs/internal/soci"
)

// ErrBrokenLayer means a layer whose bytes are its digest's does not hold
// a gzip tar stream a zTOC can be built from.
var ErrBrokenLayer = errors.New("layer cannot be indexed")

// commitWait bounds the wait for the cache to commit a layer streamed
// from the registry (an fsync and a rename).
const commitWait = time.Minute

// built is the zTOC of one layer, encoded, and checked as a reader would
// check it.
type built struct {
	layer ocispec.Descriptor
	data  []byte
	desc  ocispec.Descriptor // the zTOC blob
	spans int
	// spanSize is the span size the zTOC records.
	spanSize int64
	cached   bool
}

// buildZtoc builds layer's zTOC in one sequential pass through its
// verified bytes. The zTOC is kept only when the pass read the layer to
// its end and the bytes were the digest's; then it is parsed back as any
// reader would parse it, so that imgfs never publishes a zTOC that it, or
// SOCI, would refuse.
func buildZtoc(ctx context.Context, store *cache.Store, fetcher blobio.Fetcher, layer ocispec.Descriptor, opts Options) (*built, error) {
	rd, stream, err := openLayer(ctx, store, fetcher, layer)
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", layer.Digest, err)
	}
	defer rd.Close()
	toc, berr := ztoc.Build(bufio.NewReaderSize(rd, 1<<20), ztoc.BuildOptions{SpanSize: opts.SpanSize, BuildTool: opts.BuildTool})
	// The verdict on the bytes comes first: a build that failed on bad
	// bytes says nothing of the layer.
	if err := rd.verified(); err != nil {
		return nil, err
	}
	if stream != nil {
		// The cache commits the verified blob in the background; wait,
		// so that a push again, or a mount, finds it whole.
		wait, cancel := context.WithTimeout(ctx, commitWait)
		if err := stream.AwaitCommit(wait); err != nil {
			opts.Log.Debug("layer not kept in the cache", "layer", layer.Digest, "err", err)
		}
		cancel()
	}
	if errors.Is(berr, ztoc.ErrNotRepresentable) {
		return nil, &unrepresentable{err: berr}
	}
	if berr != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBrokenLayer, layer.Digest, berr)
	}
	data, err := ztoc.Encode(toc)
	if errors.Is(err, ztoc.ErrNotRepresentable) {
		return nil, &unrepresentable{err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("layer %s: encode zTOC: %w", layer.Digest, err)
	}
	parsed, err := checkZtoc(data, layer)
	if err != nil {
		return nil, fmt.Errorf("layer %s: the zTOC built: %w", layer.Digest, err)
	}
	return &built{
		layer:    layer,
		data:     data,
		desc:     ocispec.Descriptor{MediaType: soci.ZtocMediaType, Digest: digest.FromBytes(data), Size: int64(len(data))},
		spans:    len(parsed.Checkpoints),
		spanSize: parsed.SpanSize,
		cached:   stream == nil,
	}, nil
}

// unrepresentable is buildZtoc's answer for a layer, verified and whole,
// that holds what a zTOC cannot describe: the layer gets no zTOC.
type unrepresentable struct{ err error }

func (u *unrepresentable) Error() string { return u.err.Error() }
func (u *unrepresentable) Unwrap() error { return u.err }

// checkZtoc parses a zTOC as a reader would, and checks it against the
// layer it indexes and the limits readers hold it to: its size, the
// blob's size, and every span's compressed bytes.
func checkZtoc(data []byte, layer ocispec.Descriptor) (*ztoc.TOC, error) {
	if len(data) > soci.MaxZtocSize {
		return nil, fmt.Errorf("%d bytes, over the %d MiB readers accept", len(data), soci.MaxZtocSize>>20)
	}
	toc, err := ztoc.Parse(data, ztoc.Limits{})
	if err != nil {
		return nil, err
	}
	if toc.CompressedSize != layer.Size {
		return nil, fmt.Errorf("it says the layer has %d bytes, not %d", toc.CompressedSize, layer.Size)
	}
	for i := range toc.Checkpoints {
		if start, end := toc.SpanRange(i); end-start > ztoc.MaxSpan {
			return nil, fmt.Errorf("span %d holds %d compressed bytes, over the %d MiB a reader fetches at once; use a smaller span size", i, end-start, ztoc.MaxSpan>>20)
		}
	}
	return toc, nil
}
