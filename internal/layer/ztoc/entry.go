package ztoc

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/imgfs/imgfs/internal/layer"
	"github.com/imgfs/imgfs/internal/oci"
)

// The slots of ztoc.fbs's FileMetadata that Parse reads; uname (8) and
// gname (9) are not among them.
const (
	fmName     = 0
	fmType     = 1
	fmOffset   = 2
	fmSize     = 3
	fmLinkname = 4
	fmMode     = 5
	fmUID      = 6
	fmGID      = 7
	fmModTime  = 10
	fmDevmajor = 11
	fmDevminor = 12
	fmXattrs   = 13

	xattrKey   = 0
	xattrValue = 1
)

// blockSize is a tar block: headers and data start on its multiples.
const blockSize = 512

// types maps the type strings SOCI writes to imgfs's.
var types = map[string]layer.Type{
	"reg":      layer.TypeRegular,
	"dir":      layer.TypeDir,
	"symlink":  layer.TypeSymlink,
	"hardlink": layer.TypeHardlink,
	"char":     layer.TypeChar,
	"block":    layer.TypeBlock,
	"fifo":     layer.TypeFifo,
}

// PAX record prefixes Parse looks for in an entry's records.
const (
	xattrPrefix  = "SCHILY.xattr."
	sparsePrefix = "GNU.sparse."
)

// readEntries reads the toc's entries and puts them in stream order, as
// SOCI does: by data offset, each one's headers starting where the data
// before them ends, rounded up to a tar block.
//
// Until then each entry's Size holds the size the zTOC records, which
// places the next entry's headers even for an entry that is not a regular
// file; such an entry's Size is set to 0 at the end, as Entry's doc says.
func readEntries(toc table, uncompressed int64, lim Limits) ([]layer.Entry, error) {
	v, err := toc.vector(tocMetadata, 4, "toc entries")
	if err != nil {
		return nil, err
	}
	if v.n > lim.MaxEntries {
		return nil, fmt.Errorf("%d entries, over the limit of %d", v.n, lim.MaxEntries)
	}
	entries := make([]layer.Entry, v.n)
	for i := range entries {
		t, err := v.table(i, "table")
		raw := ""
		if err == nil {
			raw, err = readEntry(&entries[i], t, uncompressed, lim)
		}
		switch {
		case err != nil && raw != "":
			return nil, fmt.Errorf("entry %d %s: %w", i, oci.Quote(raw), err)
		case err != nil:
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
	}
	byData := func(a, b layer.Entry) int { return cmp.Compare(a.DataOffset, b.DataOffset) }
	if !slices.IsSortedFunc(entries, byData) {
		slices.SortStableFunc(entries, byData)
	}
	next, after := int64(0), ""
	for i := range entries {
		e := &entries[i]
		// Distinct entries get distinct data offsets, since each has a
		// header block of its own between the entry before and its data.
		if e.DataOffset < next+blockSize {
			return nil, fmt.Errorf("entry %s: data at %d leaves no header block after the data of %s, which ends at %d",
				oci.Quote(e.Name), e.DataOffset, after, next)
		}
		e.Offset = next
		next = alignBlock(e.DataOffset + e.Size)
		after = oci.Quote(e.Name)
		if e.Type != layer.TypeRegular {
			e.Size = 0
		}
	}
	return entries, nil
}

// alignBlock rounds off up to a tar block. readPlace has bounded off by
// the uncompressed size, far below overflow.
func alignBlock(off int64) int64 {
	return (off + blockSize - 1) / blockSize * blockSize
}

// readEntry reads one FileMetadata table into e. It returns the name as
// recorded, for errors to name the entry by.
func readEntry(e *layer.Entry, t table, uncompressed int64, lim Limits) (string, error) {
	raw, _, err := t.string(fmName, lim.MaxString, "name")
	if err != nil {
		return "", err
	}
	if e.Name, err = layer.NormalizeName(raw); err != nil {
		return raw, fmt.Errorf("name: %w", err)
	}
	return raw, readFields(e, t, uncompressed, lim)
}

// readFields reads the fields after the name.
func readFields(e *layer.Entry, t table, uncompressed int64, lim Limits) error {
	typ, _, err := t.string(fmType, lim.MaxString, "type")
	if err != nil {
		return err
	}
	var ok bool
	if e.Type, ok = types[typ]; !ok {
		return fmt.Errorf("type %s is not one SOCI writes", oci.Quote(typ))
	}
	if err := readPlace(e, t, uncompressed); err != nil {
		return err
	}
	mode, err := t.int64(fmMode, 0, "mode")
	if err != nil {
		return err
	}
	e.Mode = uint16(mode & 07777)
	uid, err := t.uint32(fmUID, 0, "uid")
	if err != nil {
		return err
	}
	gid, err := t.uint32(fmGID, 0, "gid")
	if err != nil {
		return err
	}
	e.UID, e.GID = int(uid), int(gid)
	if err := readModTime(e, t, lim); err != nil {
		return err
	}
	if err := readLink(e, t, lim); err != nil {
		return err
	}
	if e.Type == layer.TypeChar || e.Type == layer.TypeBlock {
		if e.Devmajor, err = t.int64(fmDevmajor, 0, "devmajor"); err != nil {
			return err
		}
		if e.Devminor, err = t.int64(fmDevminor, 0, "devminor"); err != nil {
			return err
		}
	}
	return readPAX(e, t, lim)
}

// readPlace reads where the entry's data lies in the tar stream, and its
// size, whatever its type.
func readPlace(e *layer.Entry, t table, uncompressed int64) error {
	off, err := t.int64(fmOffset, 0, "offset")
	if err != nil {
		return err
	}
	size, err := t.int64(fmSize, 0, "size")
	if err != nil {
		return err
	}
	switch {
	case off < blockSize || off%blockSize != 0:
		return fmt.Errorf("data offset %d is not a tar block after a header", off)
	case off > uncompressed:
		return fmt.Errorf("data offset %d is past the archive's uncompressed size %d", off, uncompressed)
	case size < 0 || size > uncompressed-off:
		return fmt.Errorf("size %d at offset %d runs past the archive's uncompressed size %d", size, off, uncompressed)
	}
	e.DataOffset, e.Size = off, size
	return nil
}

// readModTime reads mod_time, RFC 3339 text; the zero time when absent.
func readModTime(e *layer.Entry, t table, lim Limits) error {
	s, _, err := t.string(fmModTime, lim.MaxString, "mod time")
	if err != nil {
		return err
	}
	var mt time.Time
	if s != "" {
		if err := mt.UnmarshalText([]byte(s)); err != nil {
			return fmt.Errorf("mod time %s is not RFC 3339", oci.Quote(s))
		}
	}
	e.SetModTime(mt)
	return nil
}

// readLink reads a link's target: a symlink's as recorded, a hard link's
// normalized like a name, since it names an entry of the layer.
func readLink(e *layer.Entry, t table, lim Limits) error {
	if e.Type != layer.TypeSymlink && e.Type != layer.TypeHardlink {
		return nil
	}
	link, _, err := t.string(fmLinkname, lim.MaxString, "link name")
	if err != nil || e.Type == layer.TypeSymlink {
		e.Linkname = link
		return err
	}
	if e.Linkname, err = layer.NormalizeName(link); err != nil {
		return fmt.Errorf("hard link target %s: %w", oci.Quote(link), err)
	}
	return nil
}

// readPAX reads the entry's PAX records (the field named xattrs): the
// extended attributes are kept, and a GNU sparse record marks a sparse
// file, whose data must be read through its tar headers.
func readPAX(e *layer.Entry, t table, lim Limits) error {
	v, err := t.vector(fmXattrs, 4, "pax records")
	if err != nil {
		return err
	}
	for i := 0; i < v.n; i++ {
		rec, err := v.table(i, "pax record")
		if err != nil {
			return err
		}
		key, _, err := rec.string(xattrKey, lim.MaxString, "pax record key")
		if err != nil {
			return err
		}
		switch {
		case strings.HasPrefix(key, xattrPrefix):
			value, _, err := rec.string(xattrValue, lim.MaxString, "xattr "+oci.Quote(key))
			if err != nil {
				return err
			}
			if e.Xattrs == nil {
				e.Xattrs = map[string]string{}
			}
			e.Xattrs[key[len(xattrPrefix):]] = value
		case strings.HasPrefix(key, sparsePrefix):
			e.Sparse = e.Type == layer.TypeRegular
		}
	}
	return nil
}
