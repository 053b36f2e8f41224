package layer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/imgfs/imgfs/internal/layertest"
)

// paxHeader is a PAX extended header and its records, written by hand:
// archive/tar writes no record it would refuse to read.
func paxHeader(name string, records ...[]byte) []byte {
	body := bytes.Join(records, nil)
	return append(layertest.RawHeader("PaxHeaders/"+name, 'x', int64(len(body)), epoch), layertest.Pad(body)...)
}

// builders index an uncompressed tar as each index source does, and
// return the blob they indexed.
var builders = []struct {
	name  string
	build func(t *testing.T, raw []byte) (*Index, []byte, error)
}{
	{"tar", func(t *testing.T, raw []byte) (*Index, []byte, error) {
		idx, err := BuildTar(bytes.NewReader(raw))
		return idx, raw, err
	}},
	{"walk", func(t *testing.T, raw []byte) (*Index, []byte, error) {
		idx, _, err := WalkTar(context.Background(), &recordingSource{b: raw}, int64(len(raw)), WalkOptions{Readahead: 512})
		return idx, raw, err
	}},
	{"gzip", func(t *testing.T, raw []byte) (*Index, []byte, error) {
		blob := layertest.Gzip(raw, 6)
		idx, err := BuildGzip(bytes.NewReader(blob), BuildOptions{})
		return idx, blob, err
	}},
	{"zstd", func(t *testing.T, raw []byte) (*Index, []byte, error) {
		blob := zstdFrames(t, raw, 0)
		idx, err := BuildZstd(bytes.NewReader(blob), BuildOptions{})
		return idx, blob, err
	}},
}

// TestStreamEnds: a tar stream that ends at an entry boundary, with or
// without the end-of-archive blocks or the last file's padding, is a whole
// layer for every builder; one that ends or fails anywhere else is a
// broken layer, which NewLayer refuses, so the entries before the break
// never pass for a smaller layer.
func TestStreamEnds(t *testing.T) {
	full := mkTar(t, reg("a", "1"), dir("d/"), reg("d/b", "two"), reg("c", "three!"))
	body := full[:len(full)-2*blockSize] // no end-of-archive blocks
	first, _ := BuildTar(bytes.NewReader(full))
	c := first.Entries[3]
	next := mkTar(t, reg("e", "x"))
	threeEntries := mkTar(t, reg("a", "1"), dir("d/"), reg("d/b", "two"))
	threeEntries = threeEntries[:len(threeEntries)-2*blockSize]
	bigPAX := paxHeader("hidden", layertest.PAXRecord("comment", strings.Repeat("p", 1<<20)))
	badSum := bytes.Clone(next)
	badSum[148] ^= 0xff

	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tc := range []struct {
		name  string
		raw   []byte
		kept  int    // entries indexed
		after string // for a break: the last good entry
	}{
		{name: "complete", raw: full, kept: 4},
		{name: "no end-of-archive", raw: body, kept: 4},
		{name: "no end-of-archive nor last padding (umoci)", raw: full[:c.DataOffset+c.Size], kept: 4},
		{name: "one end-of-archive block", raw: full[:len(full)-blockSize], kept: 4},
		{name: "cut inside the end-of-archive blocks", raw: full[:len(full)-blockSize/2], kept: 4, after: "c"},
		{name: "cut inside a header", raw: cat(body, next[:100]), kept: 4, after: "c"},
		{name: "cut inside a file's data", raw: full[:c.DataOffset+3], kept: 4, after: "c"},
		{name: "cut after a PAX header", raw: cat(body, paxHeader("e", layertest.PAXRecord("comment", "x"))), kept: 4, after: "c"},
		{name: "PAX record of 1 MiB in the fourth entry", raw: cat(threeEntries, bigPAX, next), kept: 3, after: "d/b"},
		{name: "bad header checksum", raw: cat(body, badSum), kept: 4, after: "c"},
	} {
		for _, b := range builders {
			t.Run(tc.name+"/"+b.name, func(t *testing.T) {
				idx, blob, err := b.build(t, tc.raw)
				if len(idx.Entries) != tc.kept {
					t.Errorf("%d entries, want %d", len(idx.Entries), tc.kept)
				}
				l, lerr := NewLayer(idx, &recordingSource{b: blob})
				if tc.after == "" {
					if err != nil || idx.Check() != nil || lerr != nil {
						t.Fatalf("a whole layer: build %v, Check %v, NewLayer %v", err, idx.Check(), lerr)
					}
					p := make([]byte, 10)
					if n, err := l.ReadFile(context.Background(), 3, p, 0); string(p[:n]) != "three!" || err != io.EOF {
						t.Errorf("the last file reads %q, %v", p[:n], err)
					}
					return
				}
				var se *StreamError
				if !errors.As(err, &se) || se.After != tc.after {
					t.Errorf("build: %v, want a StreamError after %q", err, tc.after)
				}
				if !errors.Is(idx.Check(), ErrBroken) {
					t.Errorf("Check: %v, want ErrBroken", idx.Check())
				}
				if l != nil || !errors.Is(lerr, ErrBroken) {
					t.Errorf("NewLayer of a broken index: %v, %v; want ErrBroken", l, lerr)
				}
			})
		}
	}
}

// TestCompressedStreamCutIsBroken: a gzip or zstd layer cut short breaks
// the stream around the tar, even where the tar inside is whole, and its
// index is as broken as a tar's.
func TestCompressedStreamCutIsBroken(t *testing.T) {
	raw, _ := testLayer(t, 1)
	gzipBuild := func(r io.Reader) (*Index, error) { return BuildGzip(r, BuildOptions{}) }
	zstdBuild := func(r io.Reader) (*Index, error) { return BuildZstd(r, BuildOptions{}) }
	gzBlob, zstdBlob := layertest.Gzip(raw, 6), zstdFrames(t, raw, 100<<10)
	for _, tc := range []struct {
		name  string
		build func(r io.Reader) (*Index, error)
		blob  []byte
	}{
		{"gzip, half", gzipBuild, gzBlob[:len(gzBlob)/2]},
		{"gzip, without its trailer", gzipBuild, gzBlob[:len(gzBlob)-8]},
		{"zstd, half", zstdBuild, zstdBlob[:len(zstdBlob)/2]},
		{"zstd, without its last byte", zstdBuild, zstdBlob[:len(zstdBlob)-1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idx, err := tc.build(bytes.NewReader(tc.blob))
			if err == nil || !errors.Is(idx.Check(), ErrBroken) {
				t.Fatalf("build %v, Check %v", err, idx.Check())
			}
			if _, err := NewLayer(idx, &recordingSource{b: tc.blob}); !errors.Is(err, ErrBroken) {
				t.Errorf("NewLayer: %v, want ErrBroken", err)
			}
		})
	}
}
