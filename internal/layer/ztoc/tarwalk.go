package ztoc

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"

	"github.com/imgfs/imgfs/internal/layer"
	"github.com/imgfs/imgfs/internal/oci"
)

// walkTar reads the tar stream r once, as SOCI's toc builder reads it
// (archive/tar over a count of the bytes it takes), and fills t's Entries,
// Headers and UncompressedSize: an entry's data offset is the count after
// its headers, the archive's size the count once archive/tar has found
// its end. Each header becomes an entry through layer's own conversion,
// its headers' offset derived as a zTOC derives it (see readEntries), and
// its time in UTC, as Encode will write it.
//
// A stream that breaks is an error wrapping layer.ErrBroken and a
// layer.StreamError, as layer.BuildTar reports it, including a stream that
// ends after an entry's PAX or GNU headers, which archive/tar takes for a
// clean end. An entry a zTOC cannot hold is an error wrapping
// ErrNotRepresentable.
func walkTar(r io.Reader, t *TOC) error {
	c := &tarCounter{r: r}
	tr := tar.NewReader(c)
	links := linkTargets{}
	var next int64 // where the next entry's headers start
	after := ""
	for {
		c.watch(next)
		h, err := tr.Next()
		if err == io.EOF && c.nonzero {
			err = errEndsInHeaders
		}
		if err == io.EOF {
			t.UncompressedSize = c.pos
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %w", layer.ErrBroken, &layer.StreamError{Offset: next, After: after, Err: err})
		}
		e, hd, err := entryOf(h)
		if err == nil {
			err = links.check(&e)
		}
		if err == nil && len(t.Entries) == DefaultMaxEntries {
			err = fmt.Errorf("over the %d entries Parse reads", DefaultMaxEntries)
		}
		if err != nil {
			return fmt.Errorf("%w: entry %s at %d: %w", ErrNotRepresentable, oci.Quote(h.Name), next, err)
		}
		e.Offset, e.DataOffset = next, c.pos
		links.add(e.Name)
		t.Entries = append(t.Entries, e)
		t.Headers = append(t.Headers, hd)
		// An entry that is not a regular file has no data, whatever its
		// size field says: archive/tar reads none.
		next = alignBlock(e.DataOffset + e.Size)
		after = e.Name
	}
}

// errEndsInHeaders is a stream that ends after an entry's first header
// but before the entry itself.
var errEndsInHeaders = fmt.Errorf("the stream ends inside an entry's headers: %w", io.ErrUnexpectedEOF)

// entryOf converts a header to its entry and Header, and checks that a
// zTOC can hold them.
func entryOf(h *tar.Header) (layer.Entry, Header, error) {
	if h.Typeflag == tar.TypeXGlobalHeader {
		// SOCI's builder refuses it too. Its records are for the entries
		// after it, which SOCI would look for where it stands.
		return layer.Entry{}, Header{}, errors.New("a PAX global header, which a zTOC has no place for")
	}
	e := layer.EntryFromHeader(h)
	hd := Header{
		Name: h.Name, Linkname: h.Linkname, Mode: h.Mode,
		Uname: h.Uname, Gname: h.Gname,
		Devmajor: h.Devmajor, Devminor: h.Devminor,
		PAX: h.PAXRecords,
	}
	return e, hd, checkEntry(&e, &hd)
}

// tarCounter counts the bytes read through it, and notes whether any of
// them from a given offset on is not zero: past an entry's data, archive/tar
// reads only the next entry's headers or the zero blocks of the archive's
// end (padding it reads as part of the entry, and never checks).
type tarCounter struct {
	r       io.Reader
	pos     int64
	from    int64
	nonzero bool // a byte at or after from is not zero
}

// watch starts looking for bytes that are not zero at from.
func (c *tarCounter) watch(from int64) { c.from, c.nonzero = from, false }

func (c *tarCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if end := c.pos + int64(n); !c.nonzero && end > c.from {
		for _, b := range p[max(c.from-c.pos, 0):n] {
			if b != 0 {
				c.nonzero = true
				break
			}
		}
	}
	c.pos += int64(n)
	return n, err
}
