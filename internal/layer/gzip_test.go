package layer

import (
	"archive/tar"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"

	"github.com/imgfs/imgfs/internal/layer/inflate"
	"github.com/imgfs/imgfs/internal/layertest"
)

// testLayer is a tar of small and large files, some incompressible.
func testLayer(t testing.TB, scale int) ([]byte, map[string][]byte) {
	contents := map[string][]byte{}
	var files []file
	r := rand.New(rand.NewPCG(7, 7))
	for i := range 40 * scale {
		name := fmt.Sprintf("usr/share/f%03d", i)
		var body []byte
		switch i % 5 {
		case 0:
			body = layertest.Textish(uint64(i), 200_000)
		case 1:
			body = make([]byte, 30_000)
			for j := range body {
				body[j] = byte(r.Uint32())
			}
		default:
			body = layertest.Textish(uint64(i), r.IntN(5000))
		}
		contents[name] = body
		files = append(files, file{name: name, body: string(body)})
	}
	files = append(files, dir("etc/"), reg("etc/os-release", "ID=test\n"), symlink("etc/l", "os-release"))
	contents["etc/os-release"] = []byte("ID=test\n")
	return mkTar(t, files...), contents
}

// zlibGzip compresses with the gzip command (zlib), if present.
func zlibGzip(t testing.TB, b []byte) []byte {
	path, err := exec.LookPath("gzip")
	if err != nil {
		t.Skip("no gzip command")
	}
	cmd := exec.Command(path, "-6", "-n", "-c")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestGzipIndexAndRead(t *testing.T) {
	raw, contents := testLayer(t, 1)
	for name, blob := range map[string][]byte{
		"go-default":  layertest.Gzip(raw, gzip.DefaultCompression),
		"go-store":    layertest.Gzip(raw, gzip.NoCompression),
		"go-huffman":  layertest.Gzip(raw, gzip.HuffmanOnly),
		"go-best":     layertest.Gzip(raw, gzip.BestCompression),
		"two-members": append(layertest.Gzip(raw[:len(raw)/3], 6), layertest.Gzip(raw[len(raw)/3:], 1)...),
		"zlib-gzip-6": zlibGzip(t, raw),
	} {
		t.Run(name, func(t *testing.T) {
			idx, err := BuildGzip(bytes.NewReader(blob), BuildOptions{Spacing: 256 << 10})
			if err != nil {
				t.Fatal(err)
			}
			want, _ := BuildTar(bytes.NewReader(raw))
			if fmt.Sprint(idx.Entries) != fmt.Sprint(want.Entries) {
				t.Fatal("entries differ from the uncompressed tar's")
			}
			if idx.BlobSize != int64(len(blob)) || len(idx.Checkpoints) < 4 {
				t.Fatalf("BlobSize %d of %d, %d checkpoints", idx.BlobSize, len(blob), len(idx.Checkpoints))
			}
			checkCheckpoints(t, idx, blob, raw)
			src := &recordingSource{b: blob}
			l, err := NewLayer(idx, src)
			if err != nil {
				t.Fatal(err)
			}
			checkReads(t, l, contents)
		})
	}
}

// checkCheckpoints decompresses from every checkpoint with a fresh decoder
// and compares with the raw tar, and checks each span digest.
func checkCheckpoints(t *testing.T, idx *Index, blob, raw []byte) {
	t.Helper()
	for i, c := range idx.Checkpoints {
		if len(c.Window) > windowSize || (c.Member && c.Bits != 0) {
			t.Fatalf("checkpoint %d: window %d bits %d", i, len(c.Window), c.Bits)
		}
		f, err := inflate.Resume(bytes.NewReader(blob[c.In:]), c.inflatePoint())
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, min(100_000, int64(len(raw))-c.Out))
		if _, err := io.ReadFull(f, got); err != nil {
			t.Fatalf("checkpoint %d (in %d.%d out %d): %v", i, c.In, c.Bits, c.Out, err)
		}
		if !bytes.Equal(got, raw[c.Out:c.Out+int64(len(got))]) {
			t.Fatalf("checkpoint %d: output differs", i)
		}
		// The standard library agrees at byte-aligned block boundaries.
		if !c.Member && c.Bits == 0 {
			fr := flate.NewReaderDict(bytes.NewReader(blob[c.In:]), c.Window)
			std := make([]byte, 1000)
			if _, err := io.ReadFull(fr, std); err == nil && !bytes.Equal(std, raw[c.Out:c.Out+1000]) {
				t.Fatalf("checkpoint %d: compress/flate disagrees", i)
			}
		}
	}
}

func checkReads(t *testing.T, l Layer, contents map[string][]byte) {
	t.Helper()
	ctx := context.Background()
	for i, e := range l.Index().Entries {
		want, ok := contents[e.Name]
		if !ok {
			continue
		}
		got := make([]byte, len(want)+10)
		n, err := l.ReadFile(ctx, i, got, 0)
		if n != len(want) || err != io.EOF || !bytes.Equal(got[:n], want) {
			t.Fatalf("%s: read %d of %d, %v", e.Name, n, len(want), err)
		}
		// Sequential small reads, as FUSE makes them, reuse a cursor.
		var seq []byte
		p := make([]byte, 7000)
		for off := int64(0); ; off += int64(len(p)) {
			n, err := l.ReadFile(ctx, i, p, off)
			seq = append(seq, p[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(seq, want) {
			t.Fatalf("%s: sequential reads differ", e.Name)
		}
	}
}

func TestGzipCorruptSpanRefused(t *testing.T) {
	raw, contents := testLayer(t, 1)
	blob := layertest.Gzip(raw, 6)
	idx, err := BuildGzip(bytes.NewReader(blob), BuildOptions{Spacing: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(blob)
	k := len(idx.Checkpoints) / 2
	bad[idx.Checkpoints[k].In+100] ^= 1
	l, _ := NewLayer(idx, &recordingSource{b: bad})
	ctx := context.Background()
	var refused, served int
	for i, e := range idx.Entries {
		want := contents[e.Name]
		if e.Type != TypeRegular || len(want) == 0 {
			continue
		}
		p := make([]byte, len(want))
		n, err := l.ReadFile(ctx, i, p, 0)
		inBadSpan := e.DataOffset+e.Size > idx.Checkpoints[k].Out && (k+1 == len(idx.Checkpoints) || e.DataOffset < idx.Checkpoints[k+1].Out)
		switch {
		case err != nil && errors.Is(err, ErrCorrupt) && inBadSpan:
			refused++
		case err == nil && !inBadSpan && bytes.Equal(p[:n], want):
			served++
		default:
			t.Fatalf("%s (bad span %v): %d, %v", e.Name, inBadSpan, n, err)
		}
	}
	if refused == 0 || served == 0 {
		t.Errorf("refused %d served %d", refused, served)
	}
}

func TestGzipTruncated(t *testing.T) {
	raw, _ := testLayer(t, 1)
	blob := layertest.Gzip(raw, 6)
	full, _ := BuildGzip(bytes.NewReader(blob), BuildOptions{})
	idx, err := BuildGzip(bytes.NewReader(blob[:len(blob)/2]), BuildOptions{})
	var se *StreamError
	if !errors.As(err, &se) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err %v", err)
	}
	if len(idx.Entries) == 0 || len(idx.Entries) >= len(full.Entries) || se.After == "" {
		t.Fatalf("kept %d of %d entries, after %q", len(idx.Entries), len(full.Entries), se.After)
	}
	if !strings.Contains(err.Error(), "compressed byte") {
		t.Errorf("error does not name the compressed offset: %v", err)
	}
	t.Log(err)
}

func TestGzipCorruptChecksum(t *testing.T) {
	raw := mkTar(t, reg("a", "hello"))
	blob := layertest.Gzip(raw, 6)
	blob[len(blob)-8] ^= 1
	if _, err := BuildGzip(bytes.NewReader(blob), BuildOptions{}); !errors.Is(err, inflate.ErrChecksum) {
		t.Fatalf("err %v", err)
	}
}

var _ = tar.TypeReg
