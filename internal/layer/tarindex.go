package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/oci"
)

// BuildTar indexes an uncompressed tar stream read once from r.
//
// A stream may end cleanly at any entry boundary, without the
// end-of-archive blocks and even without the last file's padding (umoci
// writes tars so), or after the first of those two all-zero blocks. Any
// other end is a break: inside a header, a file's data or an end-of-archive
// block, after a PAX or GNU header but before the entry it describes, at a
// header archive/tar refuses (a bad checksum, a PAX record over 1 MiB), or
// on an error from r. BuildTar then returns a *StreamError naming the
// offset and the last good entry, and an index whose Err says the same (see
// Index.Check): the entries before the break are kept to show where it
// broke, not to be served. A stream of more than MaxEntries entries is
// broken the same way at the first entry past the cap, with an error
// wrapping ErrTooManyEntries and ErrBroken. Index.Format is oci.FormatTar and BlobSize the
// bytes consumed; callers indexing a decompressed stream set them.
func BuildTar(r io.Reader) (*Index, error) {
	o := newStreamOffsetReader(r)
	idx := &Index{Format: oci.FormatTar}
	err := indexTar(o, idx)
	idx.BlobSize = idx.TarSize
	return idx, err
}

// WalkOptions tunes WalkTar.
type WalkOptions struct {
	// Readahead is how many bytes each fetch asks for at least (default
	// 16 KiB). Small files' headers then often come in one fetch; large
	// files' data is skipped.
	Readahead int
}

// WalkTar indexes an uncompressed tar layer of the given size by reading
// only its headers from src, skipping file data, so listing a layer costs
// its headers plus readahead. Errors are as for BuildTar. It also returns
// how many bytes it fetched.
func WalkTar(ctx context.Context, src blobio.ReaderAt, size int64, opts WalkOptions) (*Index, int64, error) {
	if opts.Readahead == 0 {
		opts.Readahead = 16 << 10
	}
	o := newRangeOffsetReader(ctx, src, size, opts.Readahead)
	idx := &Index{Format: oci.FormatTar, BlobSize: size}
	err := indexTar(o, idx)
	return idx, o.fetched, err
}

func indexTar(o *offsetReader, idx *Index) error {
	tr := tar.NewReader(o)
	after := ""
	limit := MaxEntries()
	var list entryList
	defer func() { idx.Entries = list.slice() }()
	for {
		o.arm()
		hdr, err := tr.Next()
		start := o.headerStart()
		if err == io.EOF {
			if !o.headers {
				idx.TarSize = o.pos
				return nil
			}
			// archive/tar ends quietly when the stream stops after a PAX
			// or GNU header, before the header of the entry it describes.
			err = errEndsInHeaders
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) && o.mark < 0 && list.len() > 0 {
				last := list.last()
				if last.Bad == "" && last.Type == TypeRegular {
					last.Bad = "data truncated"
				}
			}
			idx.TarSize = o.pos
			serr := &StreamError{Offset: start, After: after, Err: err}
			idx.Err = serr.Error()
			return serr
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		if list.len() >= limit {
			idx.TarSize = o.pos
			idx.Err = tooManyEntries(limit)
			return errTooManyEntries(limit)
		}
		e := entryFromHeader(hdr)
		e.Offset, e.DataOffset = start, o.pos
		list.add(e)
		after = e.Name
	}
}

// entryChunk is how many entries an entryList holds in one array once it
// has more than that.
const entryChunk = 1 << 14

// entryList collects a layer's entries while it is indexed. A single slice
// grown by append would, for a layer of a million entries, leave behind
// every smaller array it outgrew (each a fresh span of the heap, about four
// times the final array in all); fixed chunks, copied once into an array
// of the exact length at the end, peak at twice the entries instead.
type entryList struct {
	full [][]Entry // chunks of entryChunk entries
	cur  []Entry
}

func (l *entryList) add(e Entry) {
	if len(l.cur) == entryChunk {
		l.full = append(l.full, l.cur)
		l.cur = make([]Entry, 0, entryChunk)
	}
	l.cur = append(l.cur, e)
}

func (l *entryList) len() int { return len(l.full)*entryChunk + len(l.cur) }

func (l *entryList) last() *Entry {
	if len(l.cur) == 0 {
		return nil
	}
	return &l.cur[len(l.cur)-1]
}

// slice returns the entries in one slice: the only chunk as it is, or the
// chunks copied into an array of the exact length.
func (l *entryList) slice() []Entry {
	if len(l.full) == 0 {
		return l.cur
	}
	all := make([]Entry, 0, l.len())
	for i, c := range l.full {
		all = append(all, c...)
		l.full[i] = nil
	}
	return append(all, l.cur...)
}

// errEndsInHeaders is a stream that ends after an entry's first header
// but before the entry itself.
var errEndsInHeaders = fmt.Errorf("the stream ends inside an entry's headers: %w", io.ErrUnexpectedEOF)

const xattrPrefix = "SCHILY.xattr."

// entryFromHeader converts a tar header, normalizing names and recording
// why an entry cannot be placed.
func entryFromHeader(h *tar.Header) Entry {
	e := Entry{
		Mode:     uint16(h.Mode & 07777),
		UID:      h.Uid,
		GID:      h.Gid,
		Devmajor: h.Devmajor,
		Devminor: h.Devminor,
		Offset:   -1,
	}
	e.SetModTime(h.ModTime)
	name, err := NormalizeName(h.Name)
	if err != nil {
		e.Name, e.Bad = h.Name, err.Error()
	} else {
		e.Name = name
	}
	t, ok := typeOf(h.Typeflag)
	if !ok {
		e.Type = TypeRegular
		e.setBad(fmt.Sprintf("unsupported tar type %q", h.Typeflag))
	} else {
		e.Type = t
	}
	switch e.Type {
	case TypeRegular:
		e.Size = h.Size
		e.Sparse = h.Typeflag == tar.TypeGNUSparse || isPAXSparse(h.PAXRecords)
	case TypeSymlink:
		e.Linkname = h.Linkname
	case TypeHardlink:
		target, err := NormalizeName(h.Linkname)
		if err != nil {
			e.Linkname = h.Linkname
			e.setBad("hard link target: " + err.Error())
		} else {
			e.Linkname = target
		}
	}
	if e.Type != TypeChar && e.Type != TypeBlock {
		e.Devmajor, e.Devminor = 0, 0
	}
	for k, v := range h.PAXRecords {
		if strings.HasPrefix(k, xattrPrefix) {
			if e.Xattrs == nil {
				e.Xattrs = map[string]string{}
			}
			e.Xattrs[k[len(xattrPrefix):]] = v
		}
	}
	return e
}

func (e *Entry) setBad(reason string) {
	if e.Bad == "" {
		e.Bad = reason
	}
}

func isPAXSparse(recs map[string]string) bool {
	for _, k := range []string{"GNU.sparse.major", "GNU.sparse.numblocks", "GNU.sparse.map"} {
		if _, ok := recs[k]; ok {
			return true
		}
	}
	return false
}
