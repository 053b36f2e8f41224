package layer

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/containerd/stargz-snapshotter/estargz/zstdchunked"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"

	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/oci"
)

// OpenEStargz opens an eStargz (format oci.FormatEStargz) or zstd:chunked
// (oci.FormatZstdChunked) layer of the given size from src: it reads the
// footer and the TOC by range, refuses a TOC whose digest is not tocDigest
// (from the layer's annotation), and returns a Layer whose index lists the
// TOC's entries. ReadFile then fetches only the chunks it needs and checks
// each against its chunkDigest before serving a byte of it.
//
// A TOC is whole or nothing: one that does not parse, anywhere in it (a
// footer, a JSON document or an entry tree the estargz library refuses),
// is a broken layer, ErrBroken, unless reading it failed, and then the
// error is the source's.
//
// Entries have Offset -1: the layer is served from chunks, not a tar
// stream. Hard links appear as TypeHardlink entries after their target.
func OpenEStargz(ctx context.Context, src blobio.ReaderAt, size int64, format oci.LayerFormat, tocDigest digest.Digest) (Layer, error) {
	// The TOC ends right before the footer. The library reads the footer
	// and then the TOC: read the blob's tail first, so that a TOC of up to
	// TOCReadAhead bytes comes with the footer, in one request.
	tail := make([]byte, min(size, TOCReadAhead))
	if n, err := src.ReadAt(ctx, tail, size-int64(len(tail))); n < len(tail) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("open %s TOC: %w", format, err)
	}
	// The estargz library flattens the errors of the reads it makes, so
	// the first one is kept here, to tell a failed read from a bad TOC.
	var readErr error
	ra := readerAtFunc(func(p []byte, off int64) (int, error) {
		n, err := src.ReadAt(ctx, p, off)
		if err != nil && err != io.EOF && readErr == nil {
			readErr = err
		}
		return n, err
	})
	var opts []estargz.OpenOption
	switch format {
	case oci.FormatEStargz:
	case oci.FormatZstdChunked:
		opts = append(opts, estargz.WithDecompressors(new(zstdchunked.Decompressor)))
	default:
		return nil, fmt.Errorf("layer: %s is not a TOC format", format)
	}
	r, err := estargz.Open(io.NewSectionReader(ra, 0, size), opts...)
	if err != nil && readErr != nil {
		return nil, fmt.Errorf("open %s TOC: %w", format, readErr)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s TOC: %v", ErrBroken, format, err)
	}
	v, err := r.VerifyTOC(tocDigest)
	if err != nil {
		return nil, fmt.Errorf("%s TOC: %w: %v", format, ErrCorrupt, err)
	}
	l := &tocLayer{r: r, v: v, src: src, format: format, idx: &Index{Format: format, BlobSize: size}}
	if err := l.index(); err != nil {
		return nil, fmt.Errorf("%s TOC: %w", format, err)
	}
	return l, nil
}

// TOCReadAhead is how much of an eStargz or zstd:chunked blob's end
// OpenEStargz reads before the library reads the footer and the TOC. A
// range request costs a registry more than 64 KiB of bytes does (see
// Performance in README.md), and a layer of a few hundred files has a
// TOC smaller than that.
const TOCReadAhead = 64 << 10

type readerAtFunc func(p []byte, off int64) (int, error)

func (f readerAtFunc) ReadAt(p []byte, off int64) (int, error) { return f(p, off) }

// tocLayer serves an eStargz or zstd:chunked layer chunk by chunk.
type tocLayer struct {
	r      *estargz.Reader
	v      estargz.TOCEntryVerifier
	src    blobio.ReaderAt
	format oci.LayerFormat
	idx    *Index
	names  []string // TOC name of each entry

	mu     sync.Mutex
	chunks []cachedChunk // a few verified chunks, most recent last
}

type cachedChunk struct {
	key  [2]int64 // compressed offset, inner offset
	data []byte
}

const maxCachedChunks = 8

func (l *tocLayer) Index() *Index { return l.idx }

// index lists the TOC's tree in sorted depth-first order. A tree of more
// entries than MaxEntries is an error wrapping ErrTooManyEntries.
func (l *tocLayer) index() error {
	root, ok := l.r.Lookup("")
	if !ok {
		return nil
	}
	first := map[*estargz.TOCEntry]string{}
	limit := MaxEntries()
	var walk func(dir string, d *estargz.TOCEntry)
	walk = func(dir string, d *estargz.TOCEntry) {
		if l.idx.Err != "" {
			return
		}
		var names []string
		kids := map[string]*estargz.TOCEntry{}
		d.ForeachChild(func(base string, e *estargz.TOCEntry) bool {
			names = append(names, base)
			kids[base] = e
			return true
		})
		sort.Strings(names)
		for _, base := range names {
			if dir == "" && isLandmark(base) {
				continue
			}
			if len(l.idx.Entries) >= limit {
				l.idx.Err = tooManyEntries(limit)
				return
			}
			te := kids[base]
			raw := base
			if dir != "" {
				raw = dir + "/" + base
			}
			e := tocEntry(te)
			name, err := NormalizeName(raw)
			if err != nil {
				e.Name, e.Bad = raw, err.Error()
			} else {
				e.Name = name
			}
			if target, ok := first[te]; ok && te.Type != "dir" {
				e.Type, e.Linkname, e.Size = TypeHardlink, target, 0
			} else {
				first[te] = e.Name
			}
			l.idx.Entries = append(l.idx.Entries, e)
			l.names = append(l.names, raw)
			if te.Type == "dir" {
				walk(raw, te)
			}
		}
	}
	walk("", root)
	if l.idx.Err != "" {
		return errTooManyEntries(limit)
	}
	return nil
}

// isLandmark reports whether a root entry is a build artifact of the TOC
// formats rather than image content: the markers eStargz and zstd:chunked
// builders add to delimit prioritized files, and the TOC's own tar name,
// which a TOC need not list but may. They are hidden in both formats, as
// containerd's stargz snapshotter hides them.
func isLandmark(base string) bool {
	return base == estargz.PrefetchLandmark || base == estargz.NoPrefetchLandmark || base == estargz.TOCTarName
}

func tocEntry(te *estargz.TOCEntry) Entry {
	e := Entry{Mode: uint16(te.Mode & 07777), UID: te.UID, GID: te.GID, Offset: -1, DataOffset: -1}
	e.SetModTime(te.ModTime())
	switch te.Type {
	case "reg":
		e.Type, e.Size = TypeRegular, te.Size
	case "dir":
		e.Type = TypeDir
	case "symlink":
		e.Type, e.Linkname = TypeSymlink, te.LinkName
	case "char":
		e.Type, e.Devmajor, e.Devminor = TypeChar, int64(te.DevMajor), int64(te.DevMinor)
	case "block":
		e.Type, e.Devmajor, e.Devminor = TypeBlock, int64(te.DevMajor), int64(te.DevMinor)
	case "fifo":
		e.Type = TypeFifo
	default:
		e.Type, e.Bad = TypeRegular, fmt.Sprintf("unsupported TOC type %q", te.Type)
	}
	for k, v := range te.Xattrs {
		if e.Xattrs == nil {
			e.Xattrs = map[string]string{}
		}
		e.Xattrs[k] = string(v)
	}
	return e
}

func (l *tocLayer) ReadFile(ctx context.Context, i int, p []byte, off int64) (int, error) {
	e, err := regularEntry(l.idx, i, off)
	if err != nil {
		return 0, err
	}
	n := 0
	for n < len(p) && off+int64(n) < e.Size {
		pos := off + int64(n)
		ce, ok := l.r.ChunkEntryForOffset(l.names[i], pos)
		if !ok {
			return n, fmt.Errorf("read %q at %d: no chunk in the TOC", e.Name, pos)
		}
		data, err := l.chunk(ctx, ce, e.Size)
		if err != nil {
			return n, fmt.Errorf("read %q at %d: %w", e.Name, pos, err)
		}
		in := pos - ce.ChunkOffset
		if in < 0 || in >= int64(len(data)) {
			return n, fmt.Errorf("read %q at %d: chunk at %d does not hold it: %w", e.Name, pos, ce.ChunkOffset, ErrCorrupt)
		}
		n += copy(p[n:], data[in:])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// chunk returns the verified uncompressed bytes of one chunk.
func (l *tocLayer) chunk(ctx context.Context, ce *estargz.TOCEntry, fileSize int64) ([]byte, error) {
	key := [2]int64{ce.Offset, ce.InnerOffset}
	l.mu.Lock()
	for _, c := range l.chunks {
		if c.key == key {
			l.mu.Unlock()
			return c.data, nil
		}
	}
	l.mu.Unlock()

	size := ce.ChunkSize
	if size == 0 {
		size = fileSize - ce.ChunkOffset
	}
	end := ce.NextOffset()
	if end <= ce.Offset || size < 0 || size > 1<<30 {
		return nil, fmt.Errorf("chunk at %d: bad extent: %w", ce.Offset, ErrCorrupt)
	}
	ver, err := l.v.Verifier(ce)
	if err != nil {
		return nil, fmt.Errorf("chunk at %d: %w", ce.Offset, err)
	}
	comp := make([]byte, end-ce.Offset)
	var data []byte
	err = readChecked(ctx, l.src, comp, ce.Offset, func(comp []byte) error {
		var err error
		data, err = l.decompress(comp, ce.InnerOffset, size)
		if err != nil {
			return fmt.Errorf("chunk at %d: %w: %v", ce.Offset, ErrCorrupt, err)
		}
		ver.Write(data)
		if !ver.Verified() {
			return fmt.Errorf("chunk at %d: %w", ce.Offset, ErrCorrupt)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			return nil, err
		}
		return nil, fmt.Errorf("fetch chunk [%d,%d): %w", ce.Offset, end, err)
	}
	l.mu.Lock()
	if len(l.chunks) == maxCachedChunks {
		l.chunks = l.chunks[1:]
	}
	l.chunks = append(l.chunks, cachedChunk{key: key, data: data})
	l.mu.Unlock()
	return data, nil
}

func (l *tocLayer) decompress(comp []byte, inner, size int64) ([]byte, error) {
	var r io.Reader
	if l.format == oci.FormatZstdChunked {
		d, err := zstd.NewReader(bytes.NewReader(comp), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		defer d.Close()
		r = d
	} else {
		z, err := gzip.NewReader(bytes.NewReader(comp))
		if err != nil {
			return nil, err
		}
		r = z
	}
	if _, err := io.CopyN(io.Discard, r, inner); err != nil {
		return nil, err
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, err
	}
	return data, nil
}
