package ztoc

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"maps"
	"reflect"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/imgfs/imgfs/internal/layer"
	"github.com/imgfs/imgfs/internal/layertest"
)

// builtSample is Build's TOC of the sample tar, gzipped, with two
// checkpoints, and the tar.
func builtSample(t testing.TB) (*TOC, []byte) {
	t.Helper()
	tarball := sampleTar(t)
	toc, err := Build(bytes.NewReader(layertest.Gzip(tarball, gzip.DefaultCompression)), BuildOptions{SpanSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(toc.Checkpoints) < 2 {
		t.Fatalf("%d checkpoints", len(toc.Checkpoints))
	}
	return toc, tarball
}

// TestEncodeParsed writes a TOC that Parse read, which has no Headers,
// and reads it back as itself: the names written are the normalized ones.
func TestEncodeParsed(t *testing.T) {
	spec, _ := sample(t)
	toc, err := Parse(spec.encode(), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	data, err := Encode(toc)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(data, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, toc) {
		t.Errorf("Parse(Encode(Parse(x))) differs from Parse(x)")
	}
	root, _ := newBuffer(data).root()
	v := metadataOf(t, root)
	for i := range v.n {
		f, _ := v.table(i, "entry")
		name, _, _ := f.string(fmName, 1<<10, "name")
		if name != toc.Entries[i].Name {
			t.Errorf("entry %d: name %q written for %q", i, name, toc.Entries[i].Name)
		}
	}
}

func metadataOf(t *testing.T, root table) vector {
	t.Helper()
	toc, ok, err := root.table(ztocTOC, "toc")
	if !ok || err != nil {
		t.Fatal("no toc", err)
	}
	v, err := toc.vector(tocMetadata, 4, "metadata")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestEncodeLayout reads back, field by field, what Parse does not: the
// raw names, user and group names and every PAX record, sorted, as SOCI's
// builder writes them; the algorithm left to its default, as SOCI leaves
// gzip; and the entries' tables in SOCI's order.
func TestEncodeLayout(t *testing.T) {
	toc, tarball := builtSample(t)
	data, err := Encode(toc)
	if err != nil {
		t.Fatal(err)
	}
	root, err := newBuffer(data).root()
	if err != nil {
		t.Fatal(err)
	}
	info, _, _ := root.table(ztocCompressionInfo, "info")
	if _, ok, _ := info.field(infoAlgorithm, 1, "algorithm"); ok {
		t.Error("the algorithm is written; SOCI leaves gzip, the default, out")
	}
	if id, _ := info.int32(infoMaxSpanID, -1, "max span id"); int(id) != len(toc.Checkpoints)-1 {
		t.Errorf("max span id %d", id)
	}
	tool, _, _ := root.string(ztocBuildTool, 100, "tool")
	if tool != DefaultBuildTool {
		t.Errorf("build tool %q", tool)
	}
	v := metadataOf(t, root)
	tr := tar.NewReader(bytes.NewReader(tarball))
	var last uOffset
	for i := range v.n {
		h, err := tr.Next()
		if err != nil {
			t.Fatal(err)
		}
		f, _ := v.table(i, "entry")
		if i > 0 && f.fb.Pos < last {
			t.Errorf("entry %d's table lies before entry %d's", i, i-1)
		}
		last = f.fb.Pos
		str := func(slot int) string {
			s, _, err := f.string(slot, 1<<20, "field")
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		mode, _ := f.int64(fmMode, 0, "mode")
		if str(fmName) != h.Name || str(fmLinkname) != h.Linkname || str(fmUname) != h.Uname || str(fmGname) != h.Gname || mode != h.Mode {
			t.Errorf("entry %d: %q %q %q %q %o; the tar has %q %q %q %q %o", i,
				str(fmName), str(fmLinkname), str(fmUname), str(fmGname), mode, h.Name, h.Linkname, h.Uname, h.Gname, h.Mode)
		}
		recs, _ := f.vector(fmXattrs, 4, "pax")
		var keys []string
		for j := range recs.n {
			r, _ := recs.table(j, "record")
			k, _, _ := r.string(xattrKey, 1<<10, "key")
			val, _, _ := r.string(xattrValue, 1<<10, "value")
			if h.PAXRecords[k] != val {
				t.Errorf("entry %d: PAX record %q=%q, the tar has %q", i, k, val, h.PAXRecords[k])
			}
			keys = append(keys, k)
		}
		if want := slices.Sorted(maps.Keys(h.PAXRecords)); !slices.Equal(keys, want) {
			t.Errorf("entry %d: PAX records %q, want %q", i, keys, want)
		}
	}
}

// cloneTOC copies t deeply enough for a test to change one field.
func cloneTOC(t *TOC) *TOC {
	c := *t
	c.Entries = slices.Clone(t.Entries)
	c.Headers = slices.Clone(t.Headers)
	c.Checkpoints = slices.Clone(t.Checkpoints)
	c.SpanDigests = slices.Clone(t.SpanDigests)
	return &c
}

// TestEncodeRefuses changes one thing at a time in a built TOC, and gets
// an error naming its kind: what would not read back through Parse, or
// not as the same layer.
func TestEncodeRefuses(t *testing.T) {
	base, _ := builtSample(t)
	if _, err := Encode(base); err != nil {
		t.Fatal(err)
	}
	reg := slices.IndexFunc(base.Entries, func(e layer.Entry) bool { return e.Type == layer.TypeRegular && e.Size > 0 })
	dir := slices.IndexFunc(base.Entries, func(e layer.Entry) bool { return e.Type == layer.TypeDir })
	for _, tc := range []struct {
		name string
		edit func(*TOC)
		want error
	}{
		{"version", func(t *TOC) { t.Version = "1.0" }, ErrUnsupported},
		{"headers missing", func(t *TOC) { t.Headers = t.Headers[1:] }, ErrInvalid},
		{"digest missing", func(t *TOC) { t.SpanDigests = t.SpanDigests[1:] }, ErrInvalid},
		{"digest sha512", func(t *TOC) { t.SpanDigests[0] = digest.SHA512.FromString("x") }, ErrInvalid},
		{"digest bad", func(t *TOC) { t.SpanDigests[0] = "sha256:xyz" }, ErrInvalid},
		{"no checkpoints", func(t *TOC) { t.Checkpoints, t.SpanDigests = nil, nil }, ErrInvalid},
		{"first checkpoint not at 0", func(t *TOC) { t.Checkpoints[0].Out = 1 }, ErrInvalid},
		{"checkpoints out of order", func(t *TOC) { t.Checkpoints[1].In, t.Checkpoints[1].Bits = t.Checkpoints[0].In, t.Checkpoints[0].Bits }, ErrInvalid},
		{"checkpoints at one output past 0", func(t *TOC) {
			// SOCI puts several at output 0 only, which Encode writes.
			last := t.Checkpoints[len(t.Checkpoints)-1]
			t.Checkpoints = append(t.Checkpoints, Checkpoint{Out: last.Out, In: last.In + 1})
			t.SpanDigests = append(t.SpanDigests, t.SpanDigests[0])
		}, ErrInvalid},
		{"checkpoint past the blob", func(t *TOC) { t.Checkpoints[1].In = t.CompressedSize }, ErrInvalid},
		{"bits", func(t *TOC) { t.Checkpoints[1].Bits = 8 }, ErrInvalid},
		{"window", func(t *TOC) { t.Checkpoints[1].Window = make([]byte, WindowSize+1) }, ErrInvalid},
		{"span size", func(t *TOC) { t.SpanSize = 0 }, ErrInvalid},
		{"compressed size", func(t *TOC) { t.CompressedSize = 0 }, ErrInvalid},
		{"uncompressed size", func(t *TOC) { t.UncompressedSize = -1 }, ErrInvalid},
		{"headers offset", func(t *TOC) { t.Entries[reg].Offset += blockSize }, ErrInvalid},
		{"data offset", func(t *TOC) { t.Entries[reg].DataOffset += blockSize }, ErrInvalid},
		{"size", func(t *TOC) { t.Entries[reg].Size = t.UncompressedSize }, ErrInvalid},
		{"bad", func(t *TOC) { t.Entries[reg].Bad = "bad" }, ErrNotRepresentable},
		{"sparse", func(t *TOC) { t.Entries[reg].Sparse = true }, ErrNotRepresentable},
		{"type", func(t *TOC) { t.Entries[dir].Type = 0 }, ErrNotRepresentable},
		{"uid", func(t *TOC) { t.Entries[reg].UID = -1 }, ErrNotRepresentable},
		{"header name", func(t *TOC) { t.Headers[reg].Name = "other" }, ErrNotRepresentable},
		{"header mode", func(t *TOC) { t.Headers[reg].Mode ^= 1 }, ErrNotRepresentable},
		{"header xattr", func(t *TOC) {
			t.Headers[reg].PAX = map[string]string{"SCHILY.xattr.user.extra": "x"}
		}, ErrNotRepresentable},
		{"header sparse record", func(t *TOC) {
			t.Headers[reg].PAX = map[string]string{"GNU.sparse.name": "x"}
		}, ErrNotRepresentable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			toc := cloneTOC(base)
			tc.edit(toc)
			data, err := Encode(toc)
			if !errors.Is(err, tc.want) || data != nil {
				t.Errorf("err %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := Encode(nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil: err %v", err)
	}
}
