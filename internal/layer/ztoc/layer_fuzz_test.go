package ztoc

import (
	"context"
	"io"
	"strings"
	"testing"
)

// FuzzLayer reads a file of a real gzip layer through its zTOC with one
// checkpoint changed as a hand-made or hostile TOC might have it: its
// offsets, bits and window are the fuzzer's. ReadFile must fail or return
// bytes, never both, and its decoder must not panic (ReadFile's recover
// is a backstop that the fuzzer should never see used).
func FuzzLayer(f *testing.F) {
	g := buildLayer(f, 32<<10)
	cp1 := g.toc.Checkpoints[1]
	// The seeds' windows are short: minimizing an input takes time in
	// proportion to its size, and a 32 KiB window would stall the fuzzer
	// on every new one. The unit tests read through whole windows.
	f.Add(uint8(1), cp1.In, cp1.Out, cp1.Bits, cp1.Window[len(cp1.Window)-64:], uint8(1), int64(40_000), uint32(100))
	f.Add(uint8(1), cp1.In, cp1.Out, uint8(7), []byte{1, 2, 3}, uint8(1), int64(40_000), uint32(70_000))
	f.Add(uint8(0), int64(10), int64(0), uint8(0), []byte(nil), uint8(0), int64(0), uint32(6))
	f.Add(uint8(2), int64(-1), int64(-5), uint8(200), []byte{0xff}, uint8(4), int64(-3), uint32(0))
	f.Fuzz(func(t *testing.T, k uint8, in, out int64, bits uint8, window []byte, file uint8, off int64, n uint32) {
		toc := *g.toc
		toc.Checkpoints = append([]Checkpoint(nil), g.toc.Checkpoints...)
		c := &toc.Checkpoints[int(k)%len(toc.Checkpoints)]
		c.In, c.Out, c.Bits, c.Window = in, out, bits, window
		l, err := NewLayer(&toc, int64(len(g.blob)), &recorder{b: g.blob})
		if err != nil {
			t.Fatal(err)
		}
		i := int(file) % len(l.Index().Entries)
		p := make([]byte, n%(1<<20))
		got, err := l.ReadFile(context.Background(), i, p, off)
		if err != nil && err != io.EOF && got != 0 {
			t.Errorf("n %d with error %v", got, err)
		}
		if err != nil && strings.Contains(err.Error(), "panicked") {
			t.Error(err)
		}
	})
}
