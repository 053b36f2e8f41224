package ztoc

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/imgfs/imgfs/internal/layer"
	"github.com/imgfs/imgfs/internal/layer/inflate"
	"github.com/imgfs/imgfs/internal/layertest"
)

// bigTar is a tar of many files of text, 1.3 MB in all, one of them
// crossing several spans of 64 KiB, with the sample's odd names and types
// among them.
func bigTar(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	write := func(h *tar.Header, body []byte) {
		h.Size = int64(len(body))
		if h.ModTime.IsZero() {
			h.ModTime = epoch
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	write(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	for i := range 40 {
		n := 500 + i*i*40
		if i == 20 {
			n = 500_000
		}
		write(&tar.Header{Name: fmt.Sprintf("./usr/lib/f%02d", i), Typeflag: tar.TypeReg, Mode: 0o644, Uid: i, Uname: "u"}, layertest.Textish(uint64(i), n))
	}
	write(&tar.Header{Name: "usr/lib/link", Typeflag: tar.TypeLink, Linkname: "./usr/lib/f03"}, nil)
	write(&tar.Header{Name: "usr/lib/sym", Typeflag: tar.TypeSymlink, Linkname: "f04"}, nil)
	write(&tar.Header{Name: "usr/lib/attr", Typeflag: tar.TypeReg, Mode: 0o600,
		PAXRecords: map[string]string{"SCHILY.xattr.user.a": "1", "SCHILY.xattr.security.capability": "\x00\x01\x00", "comment": "kept"}},
		layertest.Textish(99, 5000))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// members compresses tarball as concatenated gzip members, as pigz and
// cat do, cut at the given offsets.
func members(t testing.TB, tarball []byte, cuts ...int) []byte {
	t.Helper()
	var out bytes.Buffer
	start := 0
	for _, end := range append(cuts, len(tarball)) {
		out.Write(layertest.Gzip(tarball[start:end], gzip.DefaultCompression))
		start = end
	}
	return out.Bytes()
}

// boundary is a deflate block or member boundary the decoder reports.
type boundary struct {
	in     int64
	bits   uint8
	out    int64
	member bool
}

// decodeAll decodes blob whole, and returns its output and every
// boundary in it.
func decodeAll(t testing.TB, blob []byte) ([]byte, []boundary) {
	t.Helper()
	f := inflate.NewReader(bytes.NewReader(blob))
	var bs []boundary
	f.OnBoundary = func(in int64, bits uint8, out int64, member bool) {
		bs = append(bs, boundary{in, bits, out, member})
	}
	out, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return out, bs
}

// checkBuilt checks a TOC Build made of blob, a gzip of tarball, against
// what the blob holds and what SOCI's builders would record of it.
func checkBuilt(t *testing.T, toc *TOC, tarball, blob []byte, span int64) {
	t.Helper()
	checkTOC(t, toc, WindowSize)
	if toc.Version != version09 || toc.SpanSize != span || toc.CompressedSize != int64(len(blob)) {
		t.Fatalf("version %q span %d compressed %d", toc.Version, toc.SpanSize, toc.CompressedSize)
	}
	checkCheckpoints(t, toc, blob, span)
	for i := range toc.Checkpoints {
		start, end := toc.SpanRange(i)
		if got, want := toc.SpanDigests[i].Encoded(), fmt.Sprintf("%x", sha256.Sum256(blob[start:end])); got != want {
			t.Errorf("span %d [%d,%d): digest %s, want %s", i, start, end, got, want)
		}
	}
	// The entries are layer's, header offsets included.
	idx, err := layer.BuildGzip(bytes.NewReader(blob), layer.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := layer.CompareEntries(toc.Entries, idx.Entries); err != nil {
		t.Error(err)
	}
	for i := range min(len(toc.Entries), len(idx.Entries)) {
		if toc.Entries[i].Offset != idx.Entries[i].Offset {
			t.Errorf("entry %d: headers at %d, layer says %d", i, toc.Entries[i].Offset, idx.Entries[i].Offset)
		}
	}
	// The records are SOCI's toc builder's, but for the time's zone.
	files, size := tocOf(t, tarball)
	if toc.UncompressedSize != size || idx.TarSize != size {
		t.Errorf("uncompressed size %d, SOCI says %d, layer %d", toc.UncompressedSize, size, idx.TarSize)
	}
	if len(files) != len(toc.Entries) || len(toc.Headers) != len(toc.Entries) {
		t.Fatalf("%d entries, %d headers, SOCI records %d", len(toc.Entries), len(toc.Headers), len(files))
	}
	for i := range files {
		got := record(&toc.Entries[i], &toc.Headers[i])
		var gt, wt time.Time
		if gt.UnmarshalText([]byte(got.modTime)) != nil || wt.UnmarshalText([]byte(files[i].modTime)) != nil || !gt.Equal(wt) {
			t.Errorf("entry %d: time %s, SOCI writes %s", i, got.modTime, files[i].modTime)
		}
		if !strings.HasSuffix(got.modTime, "Z") {
			t.Errorf("entry %d: time %s is not in UTC", i, got.modTime)
		}
		got.modTime = files[i].modTime
		if !reflect.DeepEqual(got, files[i]) {
			t.Errorf("entry %d:\n got  %+v\n SOCI %+v", i, got, files[i])
		}
	}
	// What Encode writes reads back as the TOC.
	data, err := Encode(toc)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(data, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := *toc
	want.Headers = nil
	if !reflect.DeepEqual(back, &want) {
		t.Error("Parse(Encode(toc)) differs from toc")
		for i := range toc.Entries {
			if !reflect.DeepEqual(back.Entries[i], toc.Entries[i]) {
				t.Errorf("entry %d: read back %+v, built %+v", i, back.Entries[i], toc.Entries[i])
				break
			}
		}
	}
	readsBack(t, toc, tarball, blob)
}

// checkCheckpoints holds the checkpoints to SOCI's rule, over every
// boundary in the blob: one at every block boundary while nothing has been
// output, each next one at the first block boundary more than span bytes
// of output past it, none
// after the last that could have been, none at a member header; and each
// window the output before it, zeros before the stream.
func checkCheckpoints(t *testing.T, toc *TOC, blob []byte, span int64) {
	t.Helper()
	out, bs := decodeAll(t, blob)
	var blocks []boundary
	for _, b := range bs {
		if !b.member {
			blocks = append(blocks, b)
		}
	}
	k := 0 // the next checkpoint to meet
	for _, b := range blocks {
		due := k == 0 || b.out == 0 || b.out-toc.Checkpoints[k-1].Out > span
		if !due {
			continue
		}
		if k == len(toc.Checkpoints) {
			t.Fatalf("no checkpoint at boundary %+v, %d past the last", b, b.out-toc.Checkpoints[k-1].Out)
		}
		if c := toc.Checkpoints[k]; c.In != b.in || c.Bits != b.bits || c.Out != b.out {
			t.Fatalf("checkpoint %d at in %d bits %d out %d; SOCI's is at %+v", k, c.In, c.Bits, c.Out, b)
		}
		k++
	}
	if k != len(toc.Checkpoints) {
		t.Fatalf("%d checkpoints, SOCI's rule places %d", len(toc.Checkpoints), k)
	}
	for i, c := range toc.Checkpoints {
		want := make([]byte, WindowSize)
		copy(want[WindowSize-min(int(c.Out), WindowSize):], out[max(c.Out-WindowSize, 0):c.Out])
		if !bytes.Equal(c.Window, want) {
			t.Errorf("checkpoint %d: the window is not the output before %d", i, c.Out)
		}
	}
}

// readsBack reads every regular file of the tar through NewLayer, and gets
// its bytes.
func readsBack(t *testing.T, toc *TOC, tarball, blob []byte) {
	t.Helper()
	l, err := NewLayer(toc, int64(len(blob)), &recorder{b: blob})
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(bytes.NewReader(tarball))
	for i := 0; ; i++ {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		want, _ := io.ReadAll(tr)
		got := make([]byte, len(want)+1)
		n, err := l.ReadFile(context.Background(), i, got, 0)
		if n != len(want) || err != io.EOF || !bytes.Equal(got[:n], want) {
			t.Errorf("%s: read %d of %d bytes, err %v, equal %v", h.Name, n, len(want), err, bytes.Equal(got[:n], want))
		}
	}
}

// TestBuild builds the zTOCs of layers written by compress/gzip, at its
// levels and as concatenated members, and holds each to what the blob
// holds: SOCI's checkpoints and records, layer's entries, span digests of
// SpanRange's bytes, every file read back through NewLayer, and
// Parse(Encode(toc)) the TOC again.
func TestBuild(t *testing.T) {
	sample := sampleTar(t)
	big := bigTar(t)
	const span = 64 << 10
	for _, tc := range []struct {
		name    string
		tarball []byte
		blob    []byte
		span    int64
		spans   int // at least
	}{
		{"sample", sample, layertest.Gzip(sample, gzip.DefaultCompression), DefaultSpanSize, 1},
		{"big", big, layertest.Gzip(big, gzip.DefaultCompression), span, 8},
		{"big best", big, layertest.Gzip(big, gzip.BestCompression), span, 8},
		{"big stored", big, layertest.Gzip(big, gzip.NoCompression), span, 8},
		{"big huffman", big, layertest.Gzip(big, gzip.HuffmanOnly), span, 8},
		{"big one span", big, layertest.Gzip(big, gzip.BestSpeed), 4 << 20, 1},
		{"members", big, members(t, big, 1, 70_000, 70_100, 300_000, 900_000), span, 8},
		{"empty members", big, members(t, big, 0, 0, 500_000, 500_000), span, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := BuildOptions{SpanSize: tc.span}
			if tc.span == DefaultSpanSize {
				opts.SpanSize = 0
			}
			toc, err := Build(bytes.NewReader(tc.blob), opts)
			if err != nil {
				t.Fatal(err)
			}
			checkBuilt(t, toc, tc.tarball, tc.blob, tc.span)
			if len(toc.Checkpoints) < tc.spans {
				t.Errorf("%d checkpoints, want at least %d", len(toc.Checkpoints), tc.spans)
			}
			if toc.BuildTool != DefaultBuildTool {
				t.Errorf("build tool %q", toc.BuildTool)
			}
		})
	}
}

// storedMember is a gzip member of one final stored block holding b, as
// zlib writes a member whose last block holds data: compress/gzip ends
// every member with an empty block, after which no member's start is
// ever more than a span past a checkpoint.
func storedMember(b []byte) []byte {
	m := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 1}
	m = binary.LittleEndian.AppendUint16(m, uint16(len(b)))
	m = binary.LittleEndian.AppendUint16(m, ^uint16(len(b)))
	m = append(m, b...)
	m = binary.LittleEndian.AppendUint32(m, crc32.ChecksumIEEE(b))
	return binary.LittleEndian.AppendUint32(m, uint32(len(b)))
}

// TestBuildSpans holds that a small span makes many checkpoints, some mid-
// byte, that a checkpoint falls at the first block of a member, after its
// header, with a window running back into the members before (as zran's
// one sliding window does), and that the options are recorded.
func TestBuildSpans(t *testing.T) {
	big := bigTar(t)
	cut := 600_000
	m1, m2, m3 := layertest.Gzip(big[:cut], gzip.DefaultCompression), storedMember(big[cut:cut+1000]), layertest.Gzip(big[cut+1000:], gzip.DefaultCompression)
	blob := slicesConcat(m1, m2, m3)
	toc, err := Build(bytes.NewReader(blob), BuildOptions{SpanSize: 1, BuildTool: "test tool"})
	if err != nil {
		t.Fatal(err)
	}
	if toc.BuildTool != "test tool" || toc.SpanSize != 1 {
		t.Errorf("build tool %q, span size %d", toc.BuildTool, toc.SpanSize)
	}
	checkBuilt(t, toc, big, blob, 1)
	var bits, member int
	for _, c := range toc.Checkpoints {
		if c.Bits != 0 {
			bits++
		}
		if c.In == int64(len(m1)+len(m2))+10 {
			member++
			if c.Out != int64(cut+1000) || !bytes.Equal(c.Window, big[cut+1000-WindowSize:cut+1000]) {
				t.Errorf("the checkpoint at the third member's first block is at out %d, with another window", c.Out)
			}
		}
	}
	if len(toc.Checkpoints) < 10 || bits == 0 || member != 1 {
		t.Errorf("%d checkpoints, %d with bits, %d at the third member's start", len(toc.Checkpoints), bits, member)
	}
}

// TestBuildEmptyStart builds a stream that starts with an empty block, as
// a writer flushed before its first byte makes: SOCI puts two checkpoints
// at output 0, and so does Build.
func TestBuildEmptyStart(t *testing.T) {
	tarball := sampleTar(t)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Flush()
	zw.Write(tarball)
	zw.Close()
	blob := buf.Bytes()
	_, bs := decodeAll(t, blob)
	if len(bs) < 3 || bs[1].out != 0 || bs[2].out != 0 {
		t.Fatalf("boundaries %+v: the stream does not start with an empty block", bs)
	}
	toc, err := Build(bytes.NewReader(blob), BuildOptions{SpanSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	checkBuilt(t, toc, tarball, blob, 1)
	if c := toc.Checkpoints; c[0].In != 10 || c[0].Out != 0 || c[1].Out != 0 || c[1].In <= c[0].In || c[2].Out == 0 {
		t.Errorf("checkpoints at (%d, %d), (%d, %d), (%d, %d); want two at output 0", c[0].In, c[0].Out, c[1].In, c[1].Out, c[2].In, c[2].Out)
	}
}

// TestBuildDeterministic holds that a layer's zTOC does not depend on the
// time zone of the machine that builds it: archive/tar returns times in
// time.Local, and Build writes them in UTC.
func TestBuildDeterministic(t *testing.T) {
	blob := layertest.Gzip(sampleTar(t), gzip.DefaultCompression)
	encode := func() []byte {
		toc, err := Build(bytes.NewReader(blob), BuildOptions{})
		if err != nil {
			t.Fatal(err)
		}
		data, err := Encode(toc)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	a := encode()
	local := time.Local
	time.Local = time.FixedZone("test", -7*3600)
	b := encode()
	time.Local = local
	if !bytes.Equal(a, b) {
		t.Error("the zTOC depends on time.Local")
	}
}

// failing yields b, then fails.
type failing struct {
	b   []byte
	err error
}

func (f *failing) Read(p []byte) (int, error) {
	if len(f.b) == 0 {
		return 0, f.err
	}
	n := copy(p, f.b)
	f.b = f.b[n:]
	return n, nil
}

// TestBuildBroken gives Build streams that break, in the gzip or the tar,
// and gets an error wrapping layer.ErrBroken and no TOC, where
// layer.BuildGzip finds the layer broken too; a failing reader is not a
// broken layer.
func TestBuildBroken(t *testing.T) {
	tarball := sampleTar(t)
	blob := layertest.Gzip(tarball, gzip.DefaultCompression)
	gz := func(b []byte) []byte { return layertest.Gzip(b, gzip.DefaultCompression) }
	flip := func(b []byte, i int) []byte {
		b = bytes.Clone(b)
		b[(i+len(b))%len(b)] ^= 0x40
		return b
	}
	// A tar whose stream stops after a PAX header.
	pax := layertest.PAXRecord("path", "x")
	endsInHeaders := append(layertest.RawHeader("PaxHeaders/x", 'x', int64(len(pax)), epoch), layertest.Pad(pax)...)
	for _, tc := range []struct {
		name string
		blob []byte
	}{
		{"empty", nil},
		{"gzip header only", blob[:10]},
		{"truncated deflate", blob[:len(blob)/2]},
		{"truncated trailer", blob[:len(blob)-3]},
		{"bad crc", flip(blob, -8)},
		{"bad size", flip(blob, -1)},
		{"garbage after", append(bytes.Clone(blob), "junk"...)},
		{"zeros after", append(bytes.Clone(blob), make([]byte, 512)...)},
		{"bad deflate", flip(blob, 12)},
		{"bad tar header", gz(flip(tarball, 0))},
		{"truncated tar data", gz(tarball[:2000])},
		{"truncated tar header", gz(tarball[:1024+100])},
		{"ends in headers", gz(endsInHeaders)},
		{"second member truncated", append(bytes.Clone(blob), gz(tarball)[:30]...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			toc, err := Build(bytes.NewReader(tc.blob), BuildOptions{})
			if !errors.Is(err, layer.ErrBroken) || toc != nil {
				t.Errorf("toc %v, err %v; want a broken layer", toc != nil, err)
			}
			if _, err := layer.BuildGzip(bytes.NewReader(tc.blob), layer.BuildOptions{}); err == nil {
				t.Error("layer.BuildGzip finds it sound")
			}
		})
	}
	ioErr := errors.New("connection reset")
	for _, n := range []int{0, 100, len(blob) - 1, len(blob)} {
		toc, err := Build(&failing{b: blob[:n], err: ioErr}, BuildOptions{})
		if !errors.Is(err, ioErr) || errors.Is(err, layer.ErrBroken) || toc != nil {
			t.Errorf("failing after %d bytes: toc %v, err %v", n, toc != nil, err)
		}
	}
	if _, err := Build(bytes.NewReader(blob), BuildOptions{SpanSize: -1}); err == nil {
		t.Error("a negative span size was taken")
	}
}

// sparseTar is a tar holding a PAX 1.0 GNU sparse file, as GNU tar writes
// one: its map, then its data.
func sparseTar() []byte {
	recs := slicesConcat(
		layertest.PAXRecord("GNU.sparse.major", "1"), layertest.PAXRecord("GNU.sparse.minor", "0"),
		layertest.PAXRecord("GNU.sparse.name", "holes"), layertest.PAXRecord("GNU.sparse.realsize", "10000"))
	body := slicesConcat(layertest.Pad([]byte("1\n9000\n5\n")), []byte("hello"))
	return slicesConcat(
		layertest.RawHeader("PaxHeaders/holes", 'x', int64(len(recs)), epoch), layertest.Pad(recs),
		layertest.RawHeader("GNUSparseFile/holes", '0', int64(len(body)), epoch), layertest.Pad(body),
		make([]byte, 1024))
}

func slicesConcat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

// TestBuildRefuses gives Build sound layers that hold what a zTOC cannot,
// and gets an error wrapping ErrNotRepresentable, not a broken layer, and
// no TOC.
func TestBuildRefuses(t *testing.T) {
	tarOf := func(hs ...*tar.Header) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range hs {
			if h.ModTime.IsZero() && h.Typeflag != tar.TypeXGlobalHeader {
				h.ModTime = epoch
			}
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			tw.Write(make([]byte, h.Size))
		}
		tw.Close()
		return buf.Bytes()
	}
	file := &tar.Header{Name: "f", Typeflag: tar.TypeReg, Size: 3, Mode: 0o644}
	big := strings.Repeat("v", DefaultMaxString+1)
	for _, tc := range []struct {
		name, tarball, reason string
	}{
		{"global header", string(tarOf(&tar.Header{Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": "c"}}, file)), "global header"},
		{"sparse", string(sparseTar()), "sparse"},
		{"volume header", string(slicesConcat(layertest.RawHeader("vol", 'V', 0, epoch), make([]byte, 1024))), "unsupported tar type"},
		{"escaping name", string(tarOf(&tar.Header{Name: "../x", Typeflag: tar.TypeReg, Mode: 0o644})), "escapes"},
		{"hard link to nothing", string(tarOf(file, &tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "missing"})), "hard link target"},
		{"hard link forward", string(tarOf(&tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "f"}, file)), "hard link target"},
		{"uid over 32 bits", string(tarOf(&tar.Header{Name: "u", Typeflag: tar.TypeReg, Uid: 1 << 33})), "owner"},
		{"year 10000", string(tarOf(&tar.Header{Name: "y", Typeflag: tar.TypeReg, ModTime: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Format: tar.FormatPAX})), "modification time"},
		{"big xattr", string(tarOf(&tar.Header{Name: "x", Typeflag: tar.TypeReg, PAXRecords: map[string]string{"SCHILY.xattr.user.big": big}})), "extended attribute"},
		{"big link target", string(tarOf(&tar.Header{Name: "s", Typeflag: tar.TypeSymlink, Linkname: big})), "link target"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blob := layertest.Gzip([]byte(tc.tarball), gzip.DefaultCompression)
			toc, err := Build(bytes.NewReader(blob), BuildOptions{})
			if !errors.Is(err, ErrNotRepresentable) || errors.Is(err, layer.ErrBroken) || toc != nil {
				t.Fatalf("toc %v, err %v; want ErrNotRepresentable", toc != nil, err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("err %q does not say %q", err, tc.reason)
			}
			if _, err := layer.BuildGzip(bytes.NewReader(blob), layer.BuildOptions{}); err != nil {
				t.Errorf("layer.BuildGzip finds it broken: %v", err)
			}
		})
	}
}

// TestBuildHardLinks holds that hard links SOCI can resolve are kept:
// to an entry before, to a directory an entry before implies, and to
// another hard link.
func TestBuildHardLinks(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "a/b/f", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "h1", Typeflag: tar.TypeLink, Linkname: "./a/b/f"},
		{Name: "h2", Typeflag: tar.TypeLink, Linkname: "h1"},
		{Name: "h3", Typeflag: tar.TypeLink, Linkname: "a/b"},
	} {
		h.ModTime = epoch
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	blob := layertest.Gzip(buf.Bytes(), gzip.DefaultCompression)
	toc, err := Build(bytes.NewReader(blob), BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkBuilt(t, toc, buf.Bytes(), blob, DefaultSpanSize)
}
