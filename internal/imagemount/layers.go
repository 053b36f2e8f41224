package imagemount

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/cache/artifacts"
	"github.com/imgfs/imgfs/fusefs"
	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/layer"
	"github.com/imgfs/imgfs/internal/layer/ztoc"
	"github.com/imgfs/imgfs/internal/oci"
)

// layerFiles opens the files inside layers for the mount's file views,
// from the cache through internal/layer, picking each layer's best index
// source (see build). One build per layer digest runs in the mount's work
// group, so closing the mount cancels it; a failed build is tried again by
// the next caller, unless it found the layer broken in bytes that were
// verified, which no second try can change.
type layerFiles struct {
	store   *cache.Store
	fetcher blobio.Fetcher
	work    *workGroup
	log     *slog.Logger
	strict  bool        // cache.VerifyStrict: tar layers too are read only once verified
	shared  *sociFinder // nil: no index from the registry (--index=none, offline)

	mu       sync.Mutex
	builds   map[digest.Digest]*layerBuild
	suspects map[digest.Digest]*suspect // layers served through unbound zTOCs (crosscheck.go)
}

var (
	_ fusefs.LayerFiles   = (*layerFiles)(nil)
	_ layer.CheckedSource = (*cache.RangeReader)(nil) // bad chunks and spans are refetched
)

func newLayerFiles(store *cache.Store, fetcher blobio.Fetcher, work *workGroup, log *slog.Logger) *layerFiles {
	l := &layerFiles{store: store, fetcher: fetcher, work: work, log: log, strict: store.Options().Verify == cache.VerifyStrict,
		builds: map[digest.Digest]*layerBuild{}, suspects: map[digest.Digest]*suspect{}}
	store.OnCommit(l.committed)
	return l
}

// layerBuild is the index build of one layer, and its outcome.
type layerBuild struct {
	desc   ocispec.Descriptor
	format oci.LayerFormat
	done   chan struct{}
	read   atomic.Int64 // bytes of the layer read by the index pass
	copies atomic.Int64 // file copies committed for passthrough (copies.go)
	state  atomic.Value // string: "indexing", "ready", "failed", "broken", "refused"
	// refusal says why a layer served through an unbound zTOC was refused
	// once its blob was verified (crosscheck.go).
	refusal atomic.Value // string

	layer      layer.Layer
	err        error
	indexBytes int
	source     string // where the index came from
	// verified is set when the index was read from verified bytes, so
	// that a broken layer stays broken: the next caller is given the same
	// error rather than a new build.
	verified bool
}

func (l *layerFiles) Layer(ctx context.Context, desc ocispec.Descriptor) (layer.Layer, error) {
	l.mu.Lock()
	b := l.builds[desc.Digest]
	if b != nil {
		select {
		case <-b.done:
			if b.err != nil && !b.final() {
				b = nil // try again
			}
		default:
		}
	}
	if b == nil {
		b = &layerBuild{desc: desc, done: make(chan struct{})}
		b.state.Store("indexing")
		l.builds[desc.Digest] = b
		if !l.work.goWork(func(ctx context.Context) { l.run(ctx, b) }) {
			b.err = errClosing
			b.state.Store("failed")
			close(b.done)
		}
	}
	l.mu.Unlock()
	select {
	case <-b.done:
		return b.layer, b.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *layerFiles) run(ctx context.Context, b *layerBuild) {
	start := time.Now()
	built, err := l.build(ctx, b)
	b.layer, b.err = built, err
	switch {
	case errors.Is(err, layer.ErrBroken):
		b.state.Store("broken")
		l.log.Error("layer broken: its tree and rootfs/ answer EIO", "layer", b.desc.Digest, "format", b.format, "err", err)
	case err != nil:
		b.state.Store("failed")
		l.log.Error("layer file view failed", "layer", b.desc.Digest, "format", b.format, "err", err)
	default:
		// A cross-check that already refused the layer's zTOC stands.
		b.state.CompareAndSwap("indexing", "ready")
		l.log.Info("layer indexed", "layer", b.desc.Digest, "format", b.format, "source", b.source, "entries", len(built.Index().Entries),
			"index_bytes", b.indexBytes, "index_pct_of_layer", pct(b.indexBytes, b.desc.Size), "took", time.Since(start).Round(time.Millisecond))
	}
	close(b.done)
}

// final reports whether a finished build's error stands for the mount's
// life: the layer is broken, and its bytes were verified.
func (b *layerBuild) final() bool { return b.verified && errors.Is(b.err, layer.ErrBroken) }

// errClosing is a build asked for once the mount is closing.
var errClosing = errors.New("the mount is closing")

func pct(n int, of int64) string {
	if of <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f%%", 100*float64(n)/float64(of))
}

// build opens the layer from its best index source.
func (l *layerFiles) build(ctx context.Context, b *layerBuild) (_ layer.Layer, err error) {
	format, toc, err := oci.LayerFormatOf(b.desc)
	if err != nil {
		return nil, err
	}
	b.format = format
	// Reads through an index (a TOC, a stored index, a zTOC) know the
	// compressed range they need and fetch just that; a tar's header
	// walk reads in small steps, and fetches whole chunks.
	open := l.store.NewExactRangeReader
	if format == oci.FormatTar {
		open = l.store.NewRangeReader
	}
	raw, err := open(b.desc, l.fetcher)
	if err != nil {
		return nil, err
	}
	// The layer keeps its readers for the mount's life.
	defer func() {
		if err != nil {
			raw.Close()
		}
	}()
	switch format {
	case oci.FormatEStargz, oci.FormatZstdChunked:
		b.source = "toc"
		return layer.OpenEStargz(ctx, raw, b.desc.Size, format, toc)
	case oci.FormatTar:
		return l.walkTar(ctx, b, raw)
	}
	if data, ok, err := artifacts.ReadLayerIndex(l.store, b.desc, layer.IndexVersion); err != nil {
		l.log.Warn("stored layer index unreadable; indexing again", "layer", b.desc.Digest, "err", err)
	} else if ok {
		idx, err := layer.UnmarshalIndex(data)
		if err == nil && (idx.Format != format || idx.BlobSize != b.desc.Size) {
			err = fmt.Errorf("index is of a %s blob of %d bytes", idx.Format, idx.BlobSize)
		}
		if err == nil {
			// Never stored so; the pass below gives the verdict afresh.
			err = idx.Check()
		}
		if err == nil {
			b.source, b.indexBytes = "stored", len(data)
			return layer.NewLayer(idx, raw)
		}
		l.log.Warn("stored layer index unusable; indexing again", "layer", b.desc.Digest, "err", err)
	}
	if l.shared != nil && !l.store.Exists(b.desc) {
		if z, ok := l.shared.find(ctx, b.desc); ok {
			served, err := l.openZtoc(ctx, b, z, raw)
			if err == nil {
				return served, nil
			}
			l.log.Warn("SOCI zTOC refused", "layer", b.desc.Digest, "index", z.index.Digest, "ztoc", z.ztoc.Desc.Digest, "err", err)
			if l.strict {
				return nil, err
			}
		}
	}
	idx, err := l.indexPass(ctx, b)
	if err != nil {
		return nil, err
	}
	b.source = "pass"
	// Spans are checked against the index, so the raw reader serves them
	// even once the blob is evicted.
	return layer.NewLayer(idx, raw)
}

// openZtoc serves a gzip layer through its SOCI zTOC: spans are fetched
// by range and checked against the zTOC's digests. A zTOC bound to
// nothing is also watched, to be checked against the layer once its blob
// is verified (crosscheck.go).
func (l *layerFiles) openZtoc(ctx context.Context, b *layerBuild, z sharedZtoc, raw *cache.RangeReader) (layer.Layer, error) {
	data, err := l.shared.readZtoc(ctx, z.ztoc)
	if err != nil {
		return nil, err
	}
	toc, err := ztoc.Parse(data, ztoc.Limits{})
	if err != nil {
		return nil, err
	}
	served, err := ztoc.NewLayer(toc, b.desc.Size, raw)
	if err != nil {
		return nil, err
	}
	b.source, b.indexBytes = z.source(), len(data)
	if !z.bound {
		served = l.watch(b, z, served)
	}
	return served, nil
}

// walkTar lists an uncompressed tar by its headers, fetching little more
// than them. Headers are read raw, as lazy blob reads are; file content is
// read through the verifying reader. With cache.VerifyStrict both wait for
// the whole layer to verify, and a layer found broken stays broken.
func (l *layerFiles) walkTar(ctx context.Context, b *layerBuild, raw *cache.RangeReader) (_ layer.Layer, err error) {
	verifying, err := l.store.NewReader(b.desc, l.fetcher)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			verifying.Close() // a failed walk is tried again with a new one
		}
	}()
	headers := &watchedSource{src: raw}
	if l.strict {
		headers.src = verifying
	}
	b.source = "headers"
	idx, fetched, err := layer.WalkTar(ctx, headers, b.desc.Size, layer.WalkOptions{})
	b.read.Store(fetched)
	if err != nil {
		if headers.err != nil {
			return nil, err // the source failed, not the format: try again later
		}
		b.verified = l.strict
		return nil, idx.Check()
	}
	return layer.NewLayer(idx, verifying)
}

// indexPass builds the index of a gzip or zstd layer in one sequential
// pass through the verifying reader, which also fills the cache. The pass
// reads to the end of the blob even when the stream inside is broken, so
// that a broken verdict is on verified bytes and stands, and the index is
// stored only when the blob verified and the stream was whole. The reader
// fetches in order, so that inflating overlaps the download on a slow link.
func (l *layerFiles) indexPass(ctx context.Context, b *layerBuild) (*layer.Index, error) {
	rd, err := l.store.NewStreamReader(b.desc, l.fetcher)
	if err != nil {
		return nil, err
	}
	storing := false
	defer func() {
		if !storing {
			rd.Close()
		}
	}()
	seq := &seqReader{ctx: ctx, src: rd, read: &b.read}
	br := bufio.NewReaderSize(seq, 1<<20)
	build := layer.BuildGzip
	if b.format == oci.FormatZstd {
		build = layer.BuildZstd
	}
	idx, berr := build(br, layer.BuildOptions{})
	if _, err := io.Copy(io.Discard, br); err != nil {
		return nil, fmt.Errorf("index pass: %w", err) // not verified: nothing of it is used
	}
	if seq.err != nil {
		return nil, fmt.Errorf("index pass: %w", seq.err)
	}
	b.verified = true
	if berr != nil {
		if idx == nil {
			return nil, fmt.Errorf("index pass: %w", berr)
		}
		if idx.Err == "" {
			idx.Err = berr.Error()
		}
		return nil, fmt.Errorf("index pass: %w", idx.Check())
	}
	if len(idx.Checkpoints) == 0 {
		return nil, fmt.Errorf("index pass: %w: no checkpoint", layer.ErrBroken)
	}
	data, err := idx.MarshalBinary()
	if err != nil {
		return nil, err
	}
	b.indexBytes = len(data)
	storing = l.work.goWork(func(context.Context) { l.storeIndex(b.desc, rd, data) })
	return idx, nil
}

// indexCommitWait bounds the wait for the blob's commit (an fsync and a
// rename) before its index is stored.
const indexCommitWait = time.Minute

// storeIndex stores a layer's index once its blob is committed, and closes
// rd. The verdict that ended the pass comes before the commit's fsync, so
// the view is served at once and the index follows. The wait does not end
// when the mount closes: the commit in flight finishes before the store's
// Close returns, and an unmount right after the first ls still keeps the
// index.
func (l *layerFiles) storeIndex(desc ocispec.Descriptor, rd *cache.Reader, data []byte) {
	defer rd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), indexCommitWait)
	defer cancel()
	err := rd.AwaitCommit(ctx)
	if err == nil {
		err = artifacts.WriteLayerIndex(l.store, desc, layer.IndexVersion, data)
	}
	if err != nil {
		l.log.Warn("layer index not stored; the next mount indexes the layer again", "layer", desc.Digest, "err", err)
	}
}

// seqReader reads a cache reader from the start, counting progress. It
// remembers a read error, so that a pass that stopped on the source is not
// mistaken for one that stopped on the format.
type seqReader struct {
	ctx  context.Context
	src  *cache.Reader
	off  int64
	read *atomic.Int64
	err  error
}

func (s *seqReader) Read(p []byte) (int, error) {
	n, err := s.src.ReadAt(s.ctx, p, s.off)
	s.off += int64(n)
	s.read.Store(s.off)
	if err != nil && err != io.EOF {
		s.err = err
	}
	if n > 0 && err == io.EOF {
		err = nil
	}
	return n, err
}

// watchedSource remembers the first error its source returned other than
// io.EOF, so that a walk that stopped on the source (a fetch, a digest
// mismatch, a closing mount) is not mistaken for a broken layer.
type watchedSource struct {
	src blobio.ReaderAt
	err error
}

func (w *watchedSource) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	n, err := w.src.ReadAt(ctx, p, off)
	if err != nil && err != io.EOF && w.err == nil {
		w.err = err
	}
	return n, err
}

// stats reports every layer build so far, sorted by digest.
func (l *layerFiles) stats() []LayerStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]LayerStats, 0, len(l.builds))
	for _, b := range l.builds {
		s := LayerStats{Layer: b.desc.Digest, State: b.state.Load().(string), Size: b.desc.Size, IndexedRead: b.read.Load(), FileCopies: b.copies.Load()}
		select {
		case <-b.done:
			s.Format, s.Source, s.IndexBytes = b.format.String(), b.source, b.indexBytes
			if b.err != nil {
				s.Error = b.err.Error()
			}
			if r, ok := b.refusal.Load().(string); ok {
				s.Error = r
			}
		default:
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Layer < out[j].Layer })
	return out
}
