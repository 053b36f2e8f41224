package layerview

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"sync"
	"testing"
)

// benchLayer is a ~100 MiB tar of text-like files (1 KiB to 4 MiB),
// gzipped at the default level, built once.
var benchLayer = sync.OnceValues(func() ([]byte, []byte) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	text := textish(1, 8<<20)
	for i := 0; raw.Len() < 100<<20; i++ {
		size := 1 << (10 + i%13)
		off := (i * 7919) % (len(text) - size)
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("d%d/f%d", i%50, i), Typeflag: tar.TypeReg, Size: int64(size), Mode: 0644, ModTime: epoch})
		tw.Write(text[off : off+size])
	}
	tw.Close()
	var z bytes.Buffer
	w, _ := gzip.NewWriterLevel(&z, gzip.DefaultCompression)
	w.Write(raw.Bytes())
	w.Close()
	return raw.Bytes(), z.Bytes()
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
