package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"hash"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/containerd/stargz-snapshotter/estargz/zstdchunked"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"

	"github.com/imgfs/imgfs/internal/oci"
)

// zstdChunked gives estargz.WithCompression both halves it needs.
type zstdChunked struct {
	*zstdchunked.Compressor
	*zstdchunked.Decompressor
}

func buildTOCLayer(t *testing.T, format oci.LayerFormat, raw []byte, more ...estargz.Option) ([]byte, digest.Digest) {
	opts := []estargz.Option{estargz.WithChunkSize(64 << 10)}
	if format == oci.FormatZstdChunked {
		opts = append(opts, estargz.WithCompression(&zstdChunked{&zstdchunked.Compressor{CompressionLevel: zstd.SpeedDefault}, new(zstdchunked.Decompressor)}))
	}
	opts = append(opts, more...)
	blob, err := estargz.Build(io.NewSectionReader(bytes.NewReader(raw), 0, int64(len(raw))), opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer blob.Close()
	b, err := io.ReadAll(blob)
	if err != nil {
		t.Fatal(err)
	}
	return b, blob.TOCDigest()
}

func TestTOCLayers(t *testing.T) {
	raw, contents := testLayer(t, 1)
	extra := mkTar(t, dir("x/"), reg("x/a", "hard"), hardlink("x/b", "x/a"),
		file{name: "dev/c", flag: tar.TypeChar}, file{name: "x/cap", body: "c", pax: map[string]string{"SCHILY.xattr.security.capability": "\x01"}})
	raw = append(raw[:len(raw)-1024], extra...)
	contents["x/a"] = []byte("hard")
	for _, format := range []oci.LayerFormat{oci.FormatEStargz, oci.FormatZstdChunked} {
		t.Run(format.String(), func(t *testing.T) {
			blob, toc := buildTOCLayer(t, format, raw)
			src := &recordingSource{b: blob}
			ctx := context.Background()
			l, err := OpenEStargz(ctx, src, int64(len(blob)), format, toc)
			if err != nil {
				t.Fatal(err)
			}
			// Opening reads the blob's last TOCReadAhead bytes, then the
			// footer and the TOC, all at the end.
			size := int64(len(blob))
			if first := src.reads[0]; first != [2]int64{size - min(size, TOCReadAhead), min(size, TOCReadAhead)} {
				t.Errorf("first read %v, want the last %d bytes of %d", first, TOCReadAhead, size)
			}
			tocStart := size
			var then int64
			for _, r := range src.reads[1:] {
				tocStart = min(tocStart, r[0])
				then += r[1]
			}
			// The footer read may overlap the TOC read by a few bytes.
			if then > size-tocStart+512 || tocStart < size/2 {
				t.Errorf("after the read-ahead, open read %d bytes from %d of %d", then, tocStart, size)
			}
			byName := map[string]Entry{}
			for _, e := range l.Index().Entries {
				byName[e.Name] = e
			}
			if e := byName["x/b"]; e.Type != TypeHardlink || e.Linkname != "x/a" {
				t.Errorf("hard link %+v", e)
			}
			if e := byName["dev/c"]; e.Type != TypeChar {
				t.Errorf("char device %+v", e)
			}
			if e := byName["x/cap"]; e.Xattrs["security.capability"] != "\x01" {
				t.Errorf("xattrs %+v", e)
			}
			if e := byName["etc/l"]; e.Type != TypeSymlink || e.Linkname != "os-release" {
				t.Errorf("symlink %+v", e)
			}
			// A small file's read fetches only its own chunk.
			src.reads = nil
			for i, e := range l.Index().Entries {
				if e.Name == "etc/os-release" {
					p := make([]byte, 100)
					n, err := l.ReadFile(ctx, i, p, 0)
					if err != io.EOF || string(p[:n]) != "ID=test\n" {
						t.Fatalf("os-release: %q %v", p[:n], err)
					}
				}
			}
			if got := src.total(); got == 0 || got > 4096 {
				t.Errorf("reading os-release fetched %d bytes in %v", got, src.reads)
			}
			checkReads(t, l, contents)
			tr := Merge([]*Index{l.Index()})
			if a, ok := tr.Lookup("x/a"); !ok || a.Inode().Nlink != 2 {
				t.Error("hard link not merged")
			}
		})
	}
}

func TestTOCDigestMismatch(t *testing.T) {
	raw, _ := testLayer(t, 1)
	blob, _ := buildTOCLayer(t, oci.FormatEStargz, raw)
	_, err := OpenEStargz(context.Background(), &recordingSource{b: blob}, int64(len(blob)), oci.FormatEStargz, digest.FromString("other"))
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err %v", err)
	}
}

func TestTOCCorruptChunkRefused(t *testing.T) {
	raw := mkTar(t, reg("a", strings.Repeat("alpha ", 50000)), reg("b", strings.Repeat("beta ", 50000)))
	for _, format := range []oci.LayerFormat{oci.FormatEStargz, oci.FormatZstdChunked} {
		t.Run(format.String(), func(t *testing.T) {
			blob, toc := buildTOCLayer(t, format, raw)
			l, err := OpenEStargz(context.Background(), &recordingSource{b: blob}, int64(len(blob)), format, toc)
			if err != nil {
				t.Fatal(err)
			}
			r := l.(*tocLayer)
			ce, _ := r.r.ChunkEntryForOffset("b", 70000)
			bad := bytes.Clone(blob)
			// Flip a byte inside b's second chunk's compressed bytes.
			bad[(ce.Offset+ce.NextOffset())/2] ^= 0x40
			l, err = OpenEStargz(context.Background(), &recordingSource{b: bad}, int64(len(bad)), format, toc)
			if err != nil {
				t.Fatal(err)
			}
			var bi int
			for i, e := range l.Index().Entries {
				if e.Name == "b" {
					bi = i
				}
			}
			p := make([]byte, 1000)
			if _, err := l.ReadFile(context.Background(), bi, p, 70000); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("corrupt chunk served: %v", err)
			}
			if n, err := l.ReadFile(context.Background(), bi, p, 0); err != nil || string(p[:n]) != strings.Repeat("beta ", 200) {
				t.Fatalf("intact chunk: %v", err)
			}
		})
	}
}

// tocEditor is a Compression that lets a test change a TOC before it is
// written and digested, to make TOCs no builder writes.
type tocEditor struct {
	estargz.Compressor
	estargz.Decompressor
	edit func(*estargz.JTOC)
}

func (c tocEditor) WriteTOCAndFooter(w io.Writer, off int64, toc *estargz.JTOC, diffHash hash.Hash) (digest.Digest, error) {
	c.edit(toc)
	return c.Compressor.WriteTOCAndFooter(w, off, toc, diffHash)
}

// editTOC builds raw in format with edit applied to its TOC.
func editTOC(format oci.LayerFormat, edit func(*estargz.JTOC)) estargz.Option {
	c := tocEditor{estargz.NewGzipCompressor(), new(estargz.GzipDecompressor), edit}
	if format == oci.FormatZstdChunked {
		c.Compressor, c.Decompressor = &zstdchunked.Compressor{CompressionLevel: zstd.SpeedDefault}, new(zstdchunked.Decompressor)
	}
	return estargz.WithCompression(c)
}

var tocFormats = []oci.LayerFormat{oci.FormatEStargz, oci.FormatZstdChunked}

// TestTOCLandmarksHidden: in both TOC formats, the root landmark the
// builder adds (.prefetch.landmark with prioritized files, else
// .no.prefetch.landmark) and a stargz.index.json the TOC lists are hidden,
// as containerd's stargz snapshotter hides them; the same names below the
// root are files like any other.
func TestTOCLandmarksHidden(t *testing.T) {
	raw := mkTar(t, reg("a", "a"), dir("d/"), reg("d/"+estargz.PrefetchLandmark, "p"), reg("d/"+estargz.NoPrefetchLandmark, "n"), reg("d/"+estargz.TOCTarName, "{}"))
	addTOCName := func(toc *estargz.JTOC) {
		toc.Entries = append(toc.Entries, &estargz.TOCEntry{Name: estargz.TOCTarName, Type: "reg", Mode: 0o644})
	}
	for _, format := range tocFormats {
		for _, tc := range []struct {
			name     string
			landmark string
			opts     []estargz.Option
		}{
			{"no prioritized files", estargz.NoPrefetchLandmark, nil},
			{"prioritized files", estargz.PrefetchLandmark, []estargz.Option{estargz.WithPrioritizedFiles([]string{"a"})}},
		} {
			t.Run(format.String()+"/"+tc.name, func(t *testing.T) {
				blob, toc := buildTOCLayer(t, format, raw, append(tc.opts, editTOC(format, addTOCName))...)
				l, err := OpenEStargz(context.Background(), &recordingSource{b: blob}, int64(len(blob)), format, toc)
				if err != nil {
					t.Fatal(err)
				}
				r := l.(*tocLayer).r
				for _, name := range []string{tc.landmark, estargz.TOCTarName} {
					if _, ok := r.Lookup(name); !ok {
						t.Fatalf("the TOC does not list %s: the test proves nothing", name)
					}
				}
				var got []string
				for _, e := range l.Index().Entries {
					got = append(got, e.Name)
				}
				want := []string{"a", "d", "d/" + estargz.NoPrefetchLandmark, "d/" + estargz.PrefetchLandmark, "d/" + estargz.TOCTarName}
				if !slices.Equal(got, want) {
					t.Errorf("entries %q, want %q", got, want)
				}
			})
		}
	}
}

// TestTOCThatDoesNotParseIsBroken: a TOC the estargz library refuses part
// of the way through (a hard link to a name it does not list, bytes
// garbled inside it) is a broken layer, ErrBroken, with no entries
// served; a TOC that could not be read is the source's error, not a
// broken layer.
func TestTOCThatDoesNotParseIsBroken(t *testing.T) {
	raw := mkTar(t, reg("a", "a"), reg("b", "b"))
	danglingLink := func(toc *estargz.JTOC) {
		toc.Entries = append(toc.Entries, &estargz.TOCEntry{Name: "c", Type: "hardlink", LinkName: "nowhere", Mode: 0o644})
	}
	for _, format := range tocFormats {
		t.Run(format.String()+"/hard link to nothing", func(t *testing.T) {
			blob, toc := buildTOCLayer(t, format, raw, editTOC(format, danglingLink))
			l, err := OpenEStargz(context.Background(), &recordingSource{b: blob}, int64(len(blob)), format, toc)
			if l != nil || !errors.Is(err, ErrBroken) {
				t.Fatalf("open: %v, %v; want ErrBroken", l, err)
			}
		})
		t.Run(format.String()+"/garbled", func(t *testing.T) {
			blob, toc := buildTOCLayer(t, format, raw)
			var d estargz.Decompressor = new(estargz.GzipDecompressor)
			if format == oci.FormatZstdChunked {
				d = new(zstdchunked.Decompressor)
			}
			_, tocOff, _, err := d.ParseFooter(blob[int64(len(blob))-d.FooterSize():])
			if err != nil {
				t.Fatal(err)
			}
			mid := (tocOff + int64(len(blob)) - d.FooterSize()) / 2
			copy(blob[mid:], bytes.Repeat([]byte{0xa5}, 16))
			l, err := OpenEStargz(context.Background(), &recordingSource{b: blob}, int64(len(blob)), format, toc)
			if l != nil || !errors.Is(err, ErrBroken) {
				t.Fatalf("open: %v, %v; want ErrBroken", l, err)
			}
		})
		t.Run(format.String()+"/unreadable", func(t *testing.T) {
			blob, toc := buildTOCLayer(t, format, raw)
			errFetch := errors.New("registry unreachable")
			src := failingSource{errFetch}
			l, err := OpenEStargz(context.Background(), src, int64(len(blob)), format, toc)
			if l != nil || !errors.Is(err, errFetch) || errors.Is(err, ErrBroken) {
				t.Fatalf("open: %v, %v; want the source's error", l, err)
			}
		})
	}
}

// failingSource fails every read with err.
type failingSource struct{ err error }

func (f failingSource) ReadAt(context.Context, []byte, int64) (int, error) { return 0, f.err }
