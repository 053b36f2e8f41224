package ztoc

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/imgfs/imgfs/internal/layer"
	"github.com/imgfs/imgfs/internal/oci"
)

var epoch = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)

// sampleTar is a layer's tar with one entry of every type SOCI indexes, a
// long name, extended attributes and other PAX records.
func sampleTar(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	long := "usr/share/" + strings.Repeat("d", 120) + "/file"
	for _, h := range []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755, Uid: 0, Gid: 0},
		{Name: "etc/os-release", Typeflag: tar.TypeReg, Mode: 0o644, Size: 700},
		{Name: "/etc//hostname", Typeflag: tar.TypeReg, Mode: 0o4755, Size: 5, Uid: 1000, Gid: 1000, Uname: "u", Gname: "g"},
		{Name: "etc/link", Typeflag: tar.TypeSymlink, Linkname: "../os-release", Mode: 0o777},
		{Name: "etc/hard", Typeflag: tar.TypeLink, Linkname: "./etc/hostname"},
		{Name: "dev/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666},
		{Name: "dev/sda", Typeflag: tar.TypeBlock, Devmajor: 8, Mode: 0o660},
		{Name: "run/fifo", Typeflag: tar.TypeFifo, Mode: 0o600},
		{Name: "bin/ping", Typeflag: tar.TypeReg, Mode: 0o755, Size: 1,
			PAXRecords: map[string]string{"SCHILY.xattr.security.capability": "\x01\x00", "SCHILY.xattr.user.k": "v", "comment": "not an xattr"}},
		{Name: long, Typeflag: tar.TypeReg, Mode: 0o644, Size: 1024},
		{Name: "empty", Typeflag: tar.TypeReg, Mode: 0o644},
	} {
		h.ModTime = epoch
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(bytes.Repeat([]byte{'x'}, int(h.Size))); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// counter counts the bytes read through it, as SOCI's position tracker
// does.
type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

var typeNames = map[byte]string{
	tar.TypeReg: "reg", tar.TypeDir: "dir", tar.TypeSymlink: "symlink", tar.TypeLink: "hardlink",
	tar.TypeChar: "char", tar.TypeBlock: "block", tar.TypeFifo: "fifo",
}

// tocOf makes a tar's FileMetadata as SOCI's toc builder does: one per
// header, in stream order, at the reader's position after the header,
// with every PAX record in the field named xattrs. It returns the tar's
// uncompressed size as SOCI records it.
func tocOf(t testing.TB, tarball []byte) ([]zfile, int64) {
	t.Helper()
	c := &counter{r: bytes.NewReader(tarball)}
	tr := tar.NewReader(c)
	var files []zfile
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, c.n
		}
		if err != nil {
			t.Fatal(err)
		}
		mt, _ := h.ModTime.MarshalText()
		f := zfile{
			name: h.Name, typ: typeNames[h.Typeflag], offset: c.n, size: h.Size, linkname: h.Linkname,
			mode: h.Mode, uid: uint32(h.Uid), gid: uint32(h.Gid), uname: h.Uname, gname: h.Gname,
			modTime: string(mt), devmajor: h.Devmajor, devminor: h.Devminor,
		}
		for _, k := range slices.Sorted(maps.Keys(h.PAXRecords)) {
			f.pax = append(f.pax, [2]string{k, h.PAXRecords[k]})
		}
		files = append(files, f)
	}
}

// hexDigest is a valid sha256 digest made of one repeated hex digit.
func hexDigest(c byte) string { return "sha256:" + strings.Repeat(string(c), 64) }

// sample is a valid zTOC of sampleTar, with three checkpoints (the second
// one mid-byte) over a blob of 100000 bytes, and the entries layer's own
// tar indexer finds in the same tar.
func sample(t testing.TB) (zspec, []layer.Entry) {
	t.Helper()
	tarball := sampleTar(t)
	files, size := tocOf(t, tarball)
	idx, err := layer.BuildTar(bytes.NewReader(tarball))
	if err != nil {
		t.Fatal(err)
	}
	return zspec{
		version: "0.9", buildTool: "test", compressed: 100000, uncompressed: size,
		files: files, maxSpanID: 2,
		digests: []string{hexDigest('a'), hexDigest('b'), hexDigest('c')},
		zinfo:   zinfoBlob(4096, false, zcp{in: 10}, zcp{in: 40000, out: 5000, bits: 3}, zcp{in: 70000, out: 9000}),
	}, idx.Entries
}

// TestParse reads back a zTOC made the way SOCI makes one, and finds the
// entries layer.BuildTar finds in the same tar, header offsets included.
func TestParse(t *testing.T) {
	spec, want := sample(t)
	toc, err := Parse(spec.encode(), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	checkTOC(t, toc, WindowSize)
	if toc.Version != "0.9" || toc.BuildTool != "test" || toc.CompressedSize != 100000 || toc.UncompressedSize != spec.uncompressed {
		t.Errorf("header: got %q %q %d %d", toc.Version, toc.BuildTool, toc.CompressedSize, toc.UncompressedSize)
	}
	if len(toc.Entries) != len(want) {
		t.Fatalf("%d entries, want %d", len(toc.Entries), len(want))
	}
	for i, got := range toc.Entries {
		w := want[i]
		if !got.ModTime().Equal(w.ModTime()) {
			t.Errorf("entry %d %q: mod time %v, want %v", i, got.Name, got.ModTime(), w.ModTime())
		}
		if !equalEntry(got, w) {
			t.Errorf("entry %d:\n got %+v\nwant %+v", i, got, w)
		}
	}
	if toc.SpanSize != 4096 {
		t.Errorf("span size %d, want 4096", toc.SpanSize)
	}
	wantCPs := []Checkpoint{{Out: 0, In: 10}, {Out: 5000, In: 39999, Bits: 5}, {Out: 9000, In: 70000}}
	for i, cp := range toc.Checkpoints {
		if cp.Out != wantCPs[i].Out || cp.In != wantCPs[i].In || cp.Bits != wantCPs[i].Bits {
			t.Errorf("checkpoint %d: got %+v, want %+v", i, cp, wantCPs[i])
		}
		if !bytes.Equal(cp.Window, bytes.Repeat([]byte{byte(i + 1)}, WindowSize)) {
			t.Errorf("checkpoint %d: window is not its own", i)
		}
	}
	wantDigests := []digest.Digest{digest.Digest(hexDigest('a')), digest.Digest(hexDigest('b')), digest.Digest(hexDigest('c'))}
	if !slices.Equal(toc.SpanDigests, wantDigests) {
		t.Errorf("span digests %v", toc.SpanDigests)
	}
	// Span 0 ends at the first whole byte after checkpoint 1's first bit,
	// which is in byte 39999; span 1 starts at that byte.
	for i, want := range [][2]int64{{10, 40000}, {39999, 70000}, {70000, 100000}} {
		if s, e := toc.SpanRange(i); s != want[0] || e != want[1] {
			t.Errorf("span %d: [%d, %d), want [%d, %d)", i, s, e, want[0], want[1])
		}
	}
}

func equalEntry(a, b layer.Entry) bool {
	return reflect.DeepEqual(a, b)
}

// TestParseCopies holds that the TOC does not alias the zTOC's bytes, so
// the caller may reuse them.
func TestParseCopies(t *testing.T) {
	spec, _ := sample(t)
	data := spec.encode()
	toc, err := Parse(data, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	name, window := toc.Entries[1].Name, toc.Checkpoints[1].Window[0]
	clear(data)
	if toc.Entries[1].Name != name || toc.Checkpoints[1].Window[0] != window {
		t.Error("the TOC changed with the buffer it was parsed from")
	}
}

// TestParseDefaults reads a zTOC that leaves out what the schema defaults:
// the algorithm (gzip) and max_span_id (0, one span), and sorts entries
// into stream order as SOCI does.
func TestParseDefaults(t *testing.T) {
	spec := zspec{
		version: "0.9", compressed: 50, uncompressed: 3072,
		files: []zfile{
			{name: "b", typ: "reg", offset: 1536, size: 3},
			{name: "a", typ: "dir", offset: 512},
		},
		digests: []string{hexDigest('d')},
		zinfo:   zinfoBlob(1<<22, false, zcp{in: 10}),
	}
	toc, err := Parse(spec.encode(), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	checkTOC(t, toc, WindowSize)
	if len(toc.Entries) != 2 || toc.Entries[0].Name != "a" || toc.Entries[1].Name != "b" {
		t.Fatalf("entries not in stream order: %+v", toc.Entries)
	}
	if toc.Entries[1].Offset != 512 || toc.Entries[1].Size != 3 {
		t.Errorf("entry b: offset %d size %d, want 512 and 3", toc.Entries[1].Offset, toc.Entries[1].Size)
	}
	if s, e := toc.SpanRange(0); s != 10 || e != 50 {
		t.Errorf("the only span: [%d, %d), want [10, 50)", s, e)
	}
}

// TestParseRejects holds each check Parse makes to a one-line error that
// names the problem and wraps the right sentinel.
func TestParseRejects(t *testing.T) {
	long := strings.Repeat("x", 100)
	for _, tt := range []struct {
		name   string
		edit   func(*zspec)
		lim    Limits
		want   error
		substr string
	}{
		{"over the size limit", nil, Limits{MaxSize: 1000}, ErrInvalid, "over the limit of 1000"},
		{"version", func(s *zspec) { s.version = "1.0" }, Limits{}, ErrUnsupported, `version "1.0"`},
		{"no version", func(s *zspec) { s.version = "" }, Limits{}, ErrUnsupported, `version ""`},
		{"uncompressed algorithm", func(s *zspec) { s.algorithm = 2 }, Limits{}, ErrUnsupported, "uncompressed"},
		{"unknown algorithm", func(s *zspec) { s.algorithm = 9 }, Limits{}, ErrUnsupported, "algorithm 9"},
		{"no compressed size", func(s *zspec) { s.compressed = 0 }, Limits{}, ErrInvalid, "compressed size 0"},
		{"negative compressed size", func(s *zspec) { s.compressed = -1 }, Limits{}, ErrInvalid, "compressed size -1"},
		{"negative uncompressed size", func(s *zspec) { s.uncompressed = -1 }, Limits{}, ErrInvalid, "uncompressed size -1"},
		{"uncompressed size beyond deflate", func(s *zspec) { s.compressed = 10; s.uncompressed = 10321 }, Limits{}, ErrInvalid, "1032 times"},
		{"no toc", func(s *zspec) { s.noTOC = true }, Limits{}, ErrInvalid, "no toc"},
		{"no compression info", func(s *zspec) { s.noInfo = true }, Limits{}, ErrInvalid, "no compression info"},
		{"too many entries", nil, Limits{MaxEntries: 3}, ErrInvalid, "12 entries, over the limit of 3"},
		{"empty name", func(s *zspec) { s.files[2].name = "" }, Limits{}, ErrInvalid, "entry 2: name: empty name"},
		{"escaping name", func(s *zspec) { s.files[2].name = "../../etc/passwd" }, Limits{}, ErrInvalid, `"../../etc/passwd": name: name escapes the root`},
		{"NUL in name", func(s *zspec) { s.files[2].name = "a\x00b" }, Limits{}, ErrInvalid, "NUL byte in name"},
		{"name over the string limit", func(s *zspec) { s.files[2].name = long }, Limits{MaxString: 99}, ErrInvalid, "name: 100 bytes, over the limit of 99"},
		{"name over 4096 bytes", func(s *zspec) { s.files[2].name = strings.Repeat("a", 4097) }, Limits{}, ErrInvalid, "longer than 4096"},
		{"unknown type", func(s *zspec) { s.files[2].typ = "socket" }, Limits{}, ErrInvalid, `type "socket"`},
		{"offset off a block", func(s *zspec) { s.files[2].offset += 7 }, Limits{}, ErrInvalid, "is not a tar block after a header"},
		{"offset 0", func(s *zspec) { s.files[0].offset = 0 }, Limits{}, ErrInvalid, "data offset 0"},
		{"offset past the archive", func(s *zspec) { s.files[2].offset = 1 << 20 }, Limits{}, ErrInvalid, "past the archive's uncompressed size"},
		{"negative size", func(s *zspec) { s.files[2].size = -1 }, Limits{}, ErrInvalid, "size -1"},
		{"size past the archive", func(s *zspec) { s.files[2].size = s.uncompressed }, Limits{}, ErrInvalid, "runs past the archive's uncompressed size"},
		{"entries at one offset", func(s *zspec) { s.files[3].offset = s.files[2].offset }, Limits{}, ErrInvalid, "leaves no header block"},
		{"data overlapping the entry before", func(s *zspec) { s.files[2].size = 4096 }, Limits{}, ErrInvalid, "leaves no header block"},
		{"escaping hard link", func(s *zspec) { s.files[5].linkname = "../x" }, Limits{}, ErrInvalid, `hard link target "../x": name escapes the root`},
		{"link name over the string limit", func(s *zspec) { s.files[4].linkname = long }, Limits{MaxString: 99}, ErrInvalid, "link name: 100 bytes"},
		{"mod time", func(s *zspec) { s.files[2].modTime = "yesterday" }, Limits{}, ErrInvalid, `mod time "yesterday" is not RFC 3339`},
		{"xattr over the string limit", func(s *zspec) { s.files[9].pax[0][1] = long }, Limits{MaxString: 99}, ErrInvalid, "100 bytes, over the limit of 99"},
		{"max span id past the checkpoints", func(s *zspec) { s.maxSpanID = 3 }, Limits{}, ErrInvalid, "3 checkpoints for 4 spans"},
		{"negative max span id", func(s *zspec) { s.maxSpanID = -1 }, Limits{}, ErrInvalid, "max span id -1"},
		{"too few digests", func(s *zspec) { s.digests = s.digests[:2] }, Limits{}, ErrInvalid, "2 span digests for 3 spans"},
		{"malformed digest", func(s *zspec) { s.digests[1] = "sha256:XYZ" }, Limits{}, ErrInvalid, `span 1: invalid digest "sha256:XYZ"`},
		{"unknown digest algorithm", func(s *zspec) { s.digests[1] = "md5:" + strings.Repeat("0", 32) }, Limits{}, ErrInvalid, "span 1: invalid digest"},
		{"sha512 digest", func(s *zspec) { s.digests[1] = "sha512:" + strings.Repeat("0", 128) }, Limits{}, ErrInvalid, "is not sha256"},
		{"no checkpoints", func(s *zspec) { s.zinfo = nil }, Limits{}, ErrInvalid, "too short for a zinfo header"},
		{"checkpoint count 0", func(s *zspec) { s.zinfo = zinfoBlob(4096, false) }, Limits{}, ErrInvalid, "count 0"},
		{"span size 0", func(s *zspec) { s.zinfo = zinfoBlob(0, false, zcp{in: 10}) }, Limits{}, ErrInvalid, "span size 0"},
		{"truncated checkpoints", func(s *zspec) { s.zinfo = s.zinfo[:len(s.zinfo)-1] }, Limits{}, ErrInvalid, "hold neither 3 packed checkpoints"},
		{"bits past a byte", withCheckpoints(zcp{in: 10}, zcp{in: 40000, out: 5000, bits: 8}, zcp{in: 70000, out: 9000}), Limits{}, ErrInvalid, "checkpoint 1: bits 8"},
		{"bits before the blob", withCheckpoints(zcp{in: 0, bits: 1}), Limits{}, ErrInvalid, "before offset 0"},
		{"negative offset", withCheckpoints(zcp{in: -5}), Limits{}, ErrInvalid, "negative offset"},
		{"first checkpoint not at 0", withCheckpoints(zcp{in: 10, out: 1}, zcp{in: 40000, out: 5000}, zcp{in: 70000, out: 9000}), Limits{}, ErrInvalid, "checkpoint 0: uncompressed offset 1"},
		{"compressed offset past the blob", withCheckpoints(zcp{in: 10}, zcp{in: 40000, out: 5000}, zcp{in: 100000, out: 9000}), Limits{}, ErrInvalid, "past the compressed size 100000"},
		{"compressed offsets out of order", withCheckpoints(zcp{in: 10}, zcp{in: 40000, out: 5000}, zcp{in: 40000, out: 9000}), Limits{}, ErrInvalid, "checkpoint 2: offsets"},
		{"uncompressed offsets out of order", withCheckpoints(zcp{in: 10}, zcp{in: 40000, out: 5000}, zcp{in: 70000, out: 4000}), Limits{}, ErrInvalid, "checkpoint 2: offsets"},
		// SOCI puts several checkpoints at output 0 only.
		{"uncompressed offsets equal past 0", withCheckpoints(zcp{in: 10}, zcp{in: 40000, out: 5000}, zcp{in: 70000, out: 5000}), Limits{}, ErrInvalid, "checkpoint 2: offsets"},
		{"output 0 after output past it", withCheckpoints(zcp{in: 10}, zcp{in: 40000, out: 5000}, zcp{in: 70000}), Limits{}, ErrInvalid, "checkpoint 2: offsets"},
		{"compressed offsets equal at output 0", withCheckpoints(zcp{in: 10}, zcp{in: 10}, zcp{in: 70000, out: 9000}), Limits{}, ErrInvalid, "checkpoint 1: offsets"},
		{"compressed offsets out of order at output 0", withCheckpoints(zcp{in: 15}, zcp{in: 10}, zcp{in: 70000, out: 9000}), Limits{}, ErrInvalid, "checkpoint 1: offsets"},
		{"shared entry tables", func(s *zspec) {
			s.share = true
			s.files[0].pax = [][2]string{{"SCHILY.xattr.user.big", strings.Repeat("v", 60000)}}
			s.files = slices.Repeat(s.files[:1], 100)
		}, Limits{}, ErrInvalid, "refers to more data than it holds"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			spec, _ := sample(t)
			if tt.edit != nil {
				tt.edit(&spec)
			}
			_, err := Parse(spec.encode(), tt.lim)
			checkErr(t, err, tt.want, tt.substr)
		})
	}
}

// withCheckpoints edits a zspec to hold these checkpoints, in a version 2
// zinfo blob with a span size of 4 KiB.
func withCheckpoints(cps ...zcp) func(*zspec) {
	return func(s *zspec) { s.zinfo = zinfoBlob(4096, false, cps...) }
}

func checkErr(t *testing.T, err, want error, substr string) {
	t.Helper()
	switch {
	case err == nil:
		t.Fatalf("no error, want one with %q", substr)
	case !errors.Is(err, want):
		t.Errorf("error %q does not wrap %q", err, want)
	case !strings.Contains(err.Error(), substr):
		t.Errorf("error %q does not say %q", err, substr)
	case strings.Contains(err.Error(), "\n"):
		t.Errorf("error %q is not one line", err)
	}
}

// TestGuard holds that a panic inside the parser becomes an ErrInvalid:
// the last line of defence behind the checks, which no input is known to
// reach.
func TestGuard(t *testing.T) {
	_, err := guard(func() (*TOC, error) {
		var b []byte
		_ = b[len(t.Name())]
		return nil, nil
	})
	checkErr(t, err, ErrInvalid, "malformed (runtime error: index out of range")
}

// checkTOC fails t unless toc keeps the promises of TOC's doc.
func checkTOC(t *testing.T, toc *TOC, window int) {
	t.Helper()
	if toc.CompressedSize < 1 || toc.UncompressedSize < 0 {
		t.Fatalf("sizes %d, %d", toc.CompressedSize, toc.UncompressedSize)
	}
	next := int64(0)
	for i, e := range toc.Entries {
		if again, err := layer.NormalizeName(e.Name); err != nil || again != e.Name {
			t.Fatalf("entry %d: name %q is not normalized", i, e.Name)
		}
		if e.Offset < next || e.DataOffset < e.Offset+blockSize || e.DataOffset+e.Size > toc.UncompressedSize {
			t.Fatalf("entry %d %q: offset %d, data at %d, size %d, after %d, in %d",
				i, e.Name, e.Offset, e.DataOffset, e.Size, next, toc.UncompressedSize)
		}
		next = e.DataOffset
	}
	if len(toc.Checkpoints) == 0 || len(toc.Checkpoints) != len(toc.SpanDigests) {
		t.Fatalf("%d checkpoints, %d digests", len(toc.Checkpoints), len(toc.SpanDigests))
	}
	if toc.Checkpoints[0].Out != 0 {
		t.Fatalf("first checkpoint at %d", toc.Checkpoints[0].Out)
	}
	for i, cp := range toc.Checkpoints {
		if len(cp.Window) != window || cp.Bits > 7 {
			t.Fatalf("checkpoint %d: window of %d, bits %d", i, len(cp.Window), cp.Bits)
		}
		if i > 0 && (cp.Out < toc.Checkpoints[i-1].Out || cp.Out == toc.Checkpoints[i-1].Out && cp.Out != 0) {
			t.Fatalf("checkpoint %d: out %d after %d", i, cp.Out, toc.Checkpoints[i-1].Out)
		}
		if i > 0 && cp.raw().in <= toc.Checkpoints[i-1].raw().in {
			t.Fatalf("checkpoint %d: zinfo in %d after %d", i, cp.raw().in, toc.Checkpoints[i-1].raw().in)
		}
		if start, end := toc.SpanRange(i); start < 0 || start >= end || end > toc.CompressedSize {
			t.Fatalf("span %d: [%d, %d) in %d", i, start, end, toc.CompressedSize)
		}
		if err := oci.CheckDigest(toc.SpanDigests[i]); err != nil {
			t.Fatal(err)
		}
	}
}
