package layer

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/imgfs/imgfs/internal/layer/inflate"
	"github.com/imgfs/imgfs/internal/layertest"
)

// benchLayer is a ~100 MiB tar of text-like files (1 KiB to 4 MiB),
// gzipped at the default level, built once.
var benchLayer = sync.OnceValues(func() ([]byte, []byte) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	text := layertest.Textish(1, 8<<20)
	for i := 0; raw.Len() < 100<<20; i++ {
		size := 1 << (10 + i%13)
		off := (i * 7919) % (len(text) - size)
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("d%d/f%d", i%50, i), Typeflag: tar.TypeReg, Size: int64(size), Mode: 0644, ModTime: epoch})
		tw.Write(text[off : off+size])
	}
	tw.Close()
	return raw.Bytes(), layertest.Gzip(raw.Bytes(), gzip.DefaultCompression)
})

// BenchmarkIndexGzip is the index pass: decompress, list the tar, record
// checkpoints and hash spans. Compare with BenchmarkStdlibGunzipTarT.
func BenchmarkIndexGzip(b *testing.B) {
	raw, blob := benchLayer()
	b.SetBytes(int64(len(raw)))
	var idx *Index
	for b.Loop() {
		var err error
		if idx, err = BuildGzip(bytes.NewReader(blob), BuildOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	ser, _ := idx.MarshalBinary()
	b.ReportMetric(float64(len(ser))/float64(len(blob))*100, "index%blob")
	b.ReportMetric(float64(len(ser))/float64(len(raw))*100, "index%tar")
	b.ReportMetric(float64(len(idx.Entries)), "entries")
}

// BenchmarkStdlibGunzipTarT is `gunzip | tar -t` done with the standard
// library.
func BenchmarkStdlibGunzipTarT(b *testing.B) {
	raw, blob := benchLayer()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		zr, _ := gzip.NewReader(bytes.NewReader(blob))
		tr := tar.NewReader(zr)
		for {
			if _, err := tr.Next(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
		io.Copy(io.Discard, zr)
	}
}

// zipfText is a ~32 MiB tar of one file of lines of words drawn with a
// Zipf law from a fixed 4096-word vocabulary, gzipped at BestSpeed: the
// shape of the bench's file-view layer (scripts/bench, scenario 9), which
// decodes to many short matches and literals.
var zipfText = sync.OnceValues(func() ([]byte, []byte) {
	r := rand.New(rand.NewPCG(7, 7))
	const letters = "abcdefghijklmnopqrstuvwxyz_"
	words := make([][]byte, 4096)
	for i := range words {
		w := make([]byte, 2+r.IntN(9))
		for j := range w {
			w[j] = letters[r.IntN(len(letters))]
		}
		words[i] = w
	}
	zipf := rand.NewZipf(r, 1.2, 2, uint64(len(words)-1))
	var text bytes.Buffer
	for onLine := 1; text.Len() < 32<<20; onLine++ {
		text.Write(words[zipf.Uint64()])
		if onLine >= 6+r.IntN(8) {
			text.WriteByte('\n')
			onLine = 0
		} else {
			text.WriteByte(' ')
		}
	}
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	tw.WriteHeader(&tar.Header{Name: "usr/share/doc/big.txt", Typeflag: tar.TypeReg, Size: int64(text.Len()), Mode: 0644, ModTime: epoch})
	tw.Write(text.Bytes())
	tw.Close()
	return raw.Bytes(), layertest.Gzip(raw.Bytes(), gzip.BestSpeed)
})

// BenchmarkInflate is the decoder alone, on the text layer of
// BenchmarkIndexGzip and on Zipf-distributed text.
func BenchmarkInflate(b *testing.B) {
	for _, bc := range []struct {
		name string
		data func() ([]byte, []byte)
	}{{"tar", benchLayer}, {"zipf", zipfText}} {
		b.Run(bc.name, func(b *testing.B) {
			raw, blob := bc.data()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				n, err := io.Copy(io.Discard, inflate.NewReader(bytes.NewReader(blob)))
				if err != nil || n != int64(len(raw)) {
					b.Fatal(n, err)
				}
			}
		})
	}
}
