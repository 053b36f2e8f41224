package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/layertest"
)

func TestBuildTarTypes(t *testing.T) {
	long := strings.Repeat("long-directory-name/", 20) + "file"
	files := []file{
		dir("etc/"),
		reg("etc/os-release", "ID=test\n"),
		symlink("etc/link", "../usr/lib/os-release"),
		hardlink("etc/hard", "etc/os-release"),
		{name: "dev/null", flag: tar.TypeChar, mode: 0666},
		{name: "dev/sda", flag: tar.TypeBlock, mode: 0660},
		{name: "run/fifo", flag: tar.TypeFifo, mode: 0600},
		{name: long, body: "pax long name", format: tar.FormatPAX},
		{name: long + "-gnu", body: "gnu long name", format: tar.FormatGNU},
		{name: "bin/ping", body: "x", mode: 04755, pax: map[string]string{
			"SCHILY.xattr.security.capability": "\x01\x00\x00\x02",
			"SCHILY.xattr.user.comment":        "hi",
		}},
	}
	files[4].flag, files[5].flag = tar.TypeChar, tar.TypeBlock
	b := mkTar(t, files...)
	idx, err := BuildTar(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name string
		typ  Type
		mode uint16
	}{
		{"etc", TypeDir, 0755}, {"etc/os-release", TypeRegular, 0644}, {"etc/link", TypeSymlink, 0777},
		{"etc/hard", TypeHardlink, 0644}, {"dev/null", TypeChar, 0666}, {"dev/sda", TypeBlock, 0660},
		{"run/fifo", TypeFifo, 0600}, {long, TypeRegular, 0644}, {long + "-gnu", TypeRegular, 0644},
		{"bin/ping", TypeRegular, 04755},
	}
	if len(idx.Entries) != len(want) {
		t.Fatalf("%d entries, want %d", len(idx.Entries), len(want))
	}
	for i, w := range want {
		e := idx.Entries[i]
		if e.Name != w.name || e.Type != w.typ || e.Mode != w.mode || e.Bad != "" {
			t.Errorf("entry %d = %q %s %o bad=%q; want %q %s %o", i, e.Name, e.Type, e.Mode, e.Bad, w.name, w.typ, w.mode)
		}
	}
	if got := idx.Entries[2].Linkname; got != "../usr/lib/os-release" {
		t.Errorf("symlink target %q", got)
	}
	if got := idx.Entries[3].Linkname; got != "etc/os-release" {
		t.Errorf("hardlink target %q", got)
	}
	if got := idx.Entries[9].Xattrs; got["security.capability"] != "\x01\x00\x00\x02" || got["user.comment"] != "hi" || len(got) != 2 {
		t.Errorf("xattrs %q", got)
	}
	if idx.TarSize != int64(len(b)) {
		t.Errorf("TarSize %d, want %d", idx.TarSize, len(b))
	}
	// Every entry can be read again with archive/tar from its Offset, and
	// a regular file's content sits at DataOffset.
	for _, e := range idx.Entries {
		tr := tar.NewReader(bytes.NewReader(b[e.Offset:]))
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%q at %d: %v", e.Name, e.Offset, err)
		}
		if n, _ := NormalizeName(h.Name); n != e.Name {
			t.Errorf("at offset %d: %q, want %q", e.Offset, h.Name, e.Name)
		}
		if e.Type == TypeRegular {
			body, _ := io.ReadAll(tr)
			if got := b[e.DataOffset : e.DataOffset+e.Size]; !bytes.Equal(got, body) {
				t.Errorf("%q: DataOffset content %q, want %q", e.Name, got, body)
			}
		}
	}
}

func TestBuildTarBadNames(t *testing.T) {
	idx := mustIndex(t, reg("../escape", "x"), reg("/abs/file", "y"), reg("a/../../b", "z"), hardlink("h", "../../etc/shadow"), reg("ok", "w"))
	var got []string
	for _, e := range idx.Entries {
		got = append(got, fmt.Sprintf("%s|%s", e.Name, e.Bad))
	}
	want := []string{"../escape|" + ErrEscapes.Error(), "abs/file|", "a/../../b|" + ErrEscapes.Error(), "h|hard link target: " + ErrEscapes.Error(), "ok|"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestBuildTarCorruptHeader(t *testing.T) {
	b := mkTar(t, reg("a", "1"), reg("b", "2"), reg("c", "3"))
	idx0, _ := BuildTar(bytes.NewReader(b))
	off := idx0.Entries[2].Offset
	b[off+148] ^= 0xff // break c's header checksum
	idx, err := BuildTar(bytes.NewReader(b))
	var se *StreamError
	if !errors.As(err, &se) || se.Offset != off || se.After != "b" {
		t.Fatalf("err = %v, want a StreamError at %d after b", err, off)
	}
	if len(idx.Entries) != 2 || idx.Err == "" {
		t.Fatalf("kept %d entries, Err %q", len(idx.Entries), idx.Err)
	}
}

func TestBuildTarTruncatedData(t *testing.T) {
	b := mkTar(t, reg("a", "1"), reg("big", strings.Repeat("x", 5000)))
	b = b[:1024+1000]
	idx, err := BuildTar(bytes.NewReader(b))
	if err == nil || len(idx.Entries) != 2 || idx.Entries[0].Bad != "" || idx.Entries[1].Bad != "data truncated" {
		t.Fatalf("err %v, entries %+v", err, idx.Entries)
	}
}

// sparseTar writes a PAX 1.0 GNU sparse file: the map, then the data
// fragments, as GNU tar does.
func sparseTar(t testing.TB, name string, realSize int64, frags [][2]int64, fill byte) []byte {
	var m strings.Builder
	fmt.Fprintf(&m, "%d\n", len(frags))
	var data []byte
	for _, f := range frags {
		fmt.Fprintf(&m, "%d\n%d\n", f[0], f[1])
		data = append(data, bytes.Repeat([]byte{fill}, int(f[1]))...)
	}
	mapBlock := []byte(m.String())
	mapBlock = append(mapBlock, make([]byte, (blockSize-len(mapBlock)%blockSize)%blockSize)...)
	body := append(mapBlock, data...)
	recs := map[string]string{"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": name, "GNU.sparse.realsize": fmt.Sprint(realSize)}
	var pax []byte
	for _, k := range []string{"GNU.sparse.major", "GNU.sparse.minor", "GNU.sparse.name", "GNU.sparse.realsize"} {
		rec := " " + k + "=" + recs[k] + "\n"
		n := len(rec) + 2
		if len(fmt.Sprint(n)+rec) != n {
			n++
		}
		pax = append(pax, fmt.Sprint(n)+rec...)
	}
	var buf bytes.Buffer
	buf.Write(layertest.RawHeader("PaxHeaders.0/"+name, 'x', int64(len(pax)), epoch))
	buf.Write(layertest.Pad(pax))
	buf.Write(layertest.RawHeader("GNUSparseFile.0/"+name, '0', int64(len(body)), epoch))
	buf.Write(layertest.Pad(body))
	buf.Write(make([]byte, 2*blockSize))
	return buf.Bytes()
}

func TestSparseFile(t *testing.T) {
	b := sparseTar(t, "holes", 10000, [][2]int64{{1000, 10}, {9000, 1000}}, 'x')
	idx, err := BuildTar(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	e := idx.Entries[0]
	if e.Name != "holes" || e.Size != 10000 || !e.Sparse {
		t.Fatalf("entry %+v", e)
	}
	l, _ := NewLayer(idx, &recordingSource{b: b})
	got := make([]byte, 10000)
	if n, err := l.ReadFile(context.Background(), 0, got, 0); n != 10000 || err != nil {
		t.Fatal(n, err)
	}
	want := make([]byte, 10000)
	copy(want[1000:1010], "xxxxxxxxxx")
	copy(want[9000:], bytes.Repeat([]byte("x"), 1000))
	if !bytes.Equal(got, want) {
		t.Error("sparse content differs")
	}
	p := make([]byte, 20)
	if n, err := l.ReadFile(context.Background(), 0, p, 995); n != 20 || err != nil || !bytes.Equal(p, want[995:1015]) {
		t.Errorf("read at 995: %d %v %q", n, err, p)
	}
}

// TestHugeSparseHeader indexes a 9 GiB sparse file whose only data is 5
// bytes at its end: the size comes from PAX, and nothing of 9 GiB is
// written.
func TestHugeSparseHeader(t *testing.T) {
	const size = 9 << 30
	b := sparseTar(t, "huge", size, [][2]int64{{size - 5, 5}}, 'z')
	idx, err := BuildTar(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if e := idx.Entries[0]; e.Size != size || !e.Sparse {
		t.Fatalf("entry %+v", e)
	}
	l, _ := NewLayer(idx, &recordingSource{b: b})
	p := make([]byte, 8)
	if n, err := l.ReadFile(context.Background(), 0, p, 0); n != 8 || err != nil || !bytes.Equal(p, make([]byte, 8)) {
		t.Fatalf("head: %d %v %q", n, err, p)
	}
}

// TestWalkTarHugeFile walks a tar holding a 9 GiB file (PAX size) and a
// small file after it, reading only headers.
func TestWalkTarHugeFile(t *testing.T) {
	const size = 9 << 30
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "big", Typeflag: tar.TypeReg, Size: size, Mode: 0644, ModTime: epoch})
	head := bytes.Clone(buf.Bytes())
	var tail bytes.Buffer
	tw = tar.NewWriter(&tail)
	tw.WriteHeader(&tar.Header{Name: "after", Typeflag: tar.TypeReg, Size: 3, Mode: 0644, ModTime: epoch})
	tw.Write([]byte("end"))
	tw.Close()
	// head, 9 GiB of zeros, tail: build a source that splices them.
	total := int64(len(head)) + size + int64(tail.Len())
	src := blobio.ReaderAtFunc(func(ctx context.Context, p []byte, off int64) (int, error) {
		n := 0
		for n < len(p) {
			i := off + int64(n)
			switch {
			case i < int64(len(head)):
				n += copy(p[n:], head[i:])
			case i < int64(len(head))+size:
				k := min(int64(len(p)-n), int64(len(head))+size-i)
				clear(p[n : n+int(k)])
				n += int(k)
			case i < total:
				n += copy(p[n:], tail.Bytes()[i-int64(len(head))-size:])
			default:
				return n, io.EOF
			}
		}
		return n, nil
	})
	idx, fetched, err := WalkTar(context.Background(), src, total, WalkOptions{Readahead: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if len(idx.Entries) != 2 || idx.Entries[0].Size != size || idx.Entries[1].Name != "after" {
		t.Fatalf("entries %+v", idx.Entries)
	}
	if fetched > 8<<10 {
		t.Errorf("fetched %d bytes to walk the headers", fetched)
	}
	l, _ := NewLayer(idx, src)
	p := make([]byte, 3)
	if n, err := l.ReadFile(context.Background(), 1, p, 0); n != 3 || string(p) != "end" {
		t.Errorf("after: %d %v %q", n, err, p)
	}
}

func TestWalkTarMatchesBuildTar(t *testing.T) {
	var files []file
	for i := range 50 {
		files = append(files, reg(fmt.Sprintf("d/f%02d", i), strings.Repeat("x", i*997)))
		files = append(files, file{name: fmt.Sprintf("d/%s%02d", strings.Repeat("n", 120), i), body: "pax", format: tar.FormatPAX})
	}
	b := mkTar(t, files...)
	want, err := BuildTar(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	src := &recordingSource{b: b}
	got, fetched, err := WalkTar(context.Background(), src, int64(len(b)), WalkOptions{Readahead: 512})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got.Entries) != fmt.Sprint(want.Entries) {
		t.Errorf("WalkTar and BuildTar disagree")
	}
	if fetched >= int64(len(b))/2 {
		t.Errorf("walk fetched %d of %d bytes", fetched, len(b))
	}
}
