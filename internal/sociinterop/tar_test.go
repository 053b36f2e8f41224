package sociinterop

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"testing"

	"github.com/imgfs/imgfs/internal/layertest"
)

// tarEntry is one entry of a tar as archive/tar reads it, with where its
// headers and data lie in the stream: the truth the zTOCs are held to.
type tarEntry struct {
	hdr          *tar.Header
	headerOffset int64 // first byte of its first header (PAX headers included)
	dataOffset   int64
	data         []byte // a regular file's content
}

// tarLayout is a tar's entries and where the archive ends (after its
// end-of-archive blocks), as SOCI's toc builder measures it.
type tarLayout struct {
	entries []tarEntry
	end     int64
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// readTar reads raw with archive/tar. archive/tar reads a header's blocks
// and no more before Next returns, so the count then is where the data
// starts; an entry's headers start where the data before them ends,
// rounded up to a block.
func readTar(t *testing.T, raw []byte) tarLayout {
	t.Helper()
	cr := &countingReader{r: bytes.NewReader(raw)}
	tr := tar.NewReader(cr)
	var out tarLayout
	next := int64(0)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		e := tarEntry{hdr: hdr, headerOffset: next, dataOffset: cr.n}
		if hdr.Typeflag == tar.TypeReg {
			if e.data, err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		}
		next = (e.dataOffset + hdr.Size + 511) / 512 * 512
		out.entries = append(out.entries, e)
	}
	out.end = cr.n
	return out
}

// files returns the regular files' content by name (without a trailing
// slash, as the fixture's names are clean).
func (l tarLayout) files() map[string][]byte {
	m := map[string][]byte{}
	for _, e := range l.entries {
		if e.hdr.Typeflag == tar.TypeReg {
			m[e.hdr.Name] = e.data
		}
	}
	return m
}

// gzipMembers compresses raw as n gzip members of about equal parts,
// concatenated, as pigz and parallel compressors write them.
func gzipMembers(raw []byte, n int) []byte {
	var out bytes.Buffer
	part := (len(raw) + n - 1) / n
	for i := 0; i < len(raw); i += part {
		out.Write(layertest.Gzip(raw[i:min(i+part, len(raw))], gzip.DefaultCompression))
	}
	return out.Bytes()
}
