package sociinterop

import (
	"bytes"
	"compress/gzip"
	"testing"

	"github.com/imgfs/imgfs/internal/layer/ztoc"
	"github.com/imgfs/imgfs/internal/layertest"
	"github.com/imgfs/imgfs/internal/sociinterop/socitest"
)

// flushedGzip compresses raw with a writer flushed the given times before
// its first byte, so that the stream starts with as many empty blocks.
func flushedGzip(t *testing.T, raw []byte, flushes int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	for range flushes {
		if err := zw.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := zw.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestSOCIZtocEmptyStart has SOCI build the zTOCs of layers whose gzip
// stream starts with empty blocks (a writer flushed before its first
// byte) or empty gzip members, where SOCI's builder puts a checkpoint at
// every boundary while its output is empty: several at output 0. Parse
// must accept them, with SOCI's checkpoints and spans, and NewLayer read
// every file right. imgfs's Build writes the same zTOC, byte for byte, and
// SOCI's reader reads every file through it.
func TestSOCIZtocEmptyStart(t *testing.T) {
	raw := socitest.FixtureTar(3)
	want := readTar(t, raw)
	emptyMember := layertest.Gzip(nil, gzip.DefaultCompression)
	for _, tc := range []struct {
		ztocCase
		atZero int // SOCI's checkpoints at output 0
	}{
		{ztocCase{"one empty block, 64 KiB spans", flushedGzip(t, raw, 1), 64 << 10, 10}, 2},
		{ztocCase{"two empty blocks, span size 1", flushedGzip(t, raw, 2), 1, 20}, 3},
		{ztocCase{"an empty member, 64 KiB spans", append(bytes.Clone(emptyMember), layertest.Gzip(raw, gzip.DefaultCompression)...), 64 << 10, 10}, 2},
		{ztocCase{"two empty members and an empty block, SOCI's default span size", bytes.Join([][]byte{emptyMember, emptyMember, flushedGzip(t, raw, 1)}, nil), 0, 1}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			z, err := socitest.BuildZtoc(tc.blob, gzipLayer(tc.blob), socitest.Options{SpanSize: tc.spanSize})
			if err != nil {
				t.Fatal(err)
			}
			toc, err := ztoc.Parse(z.Bytes, ztoc.Limits{})
			if err != nil {
				t.Fatalf("ztoc.Parse refuses SOCI's zTOC (%d bytes): %v", len(z.Bytes), err)
			}
			atZero := 0
			for _, c := range toc.Checkpoints {
				if c.Out == 0 {
					atZero++
				}
			}
			if atZero != tc.atZero {
				t.Errorf("%d checkpoints at output 0, want %d", atZero, tc.atZero)
			}
			t.Logf("layer %d bytes, zTOC %d bytes, %d spans, %d at output 0", len(tc.blob), len(z.Bytes), len(toc.Checkpoints), atZero)
			checkHeader(t, toc, tc.ztocCase, want, len(raw))
			checkEntries(t, toc.Entries, want)
			checkSpans(t, toc, z, tc.blob)
			checkLayerReads(t, toc, tc.blob, want)

			ours, err := ztoc.Build(bytes.NewReader(tc.blob), ztoc.BuildOptions{SpanSize: tc.spanSize, BuildTool: socitest.BuildTool})
			if err != nil {
				t.Fatal(err)
			}
			soci := toc.Checkpoints
			if len(ours.Checkpoints) != len(soci) {
				t.Fatalf("Build made %d checkpoints, SOCI %d", len(ours.Checkpoints), len(soci))
			}
			for i, c := range ours.Checkpoints {
				s := soci[i]
				if c.In != s.In || c.Bits != s.Bits || c.Out != s.Out || !bytes.Equal(c.Window, s.Window) {
					t.Errorf("checkpoint %d: Build's (in %d, bits %d, out %d), SOCI's (in %d, bits %d, out %d), windows equal: %t",
						i, c.In, c.Bits, c.Out, s.In, s.Bits, s.Out, bytes.Equal(c.Window, s.Window))
				}
			}
			b, err := ztoc.Encode(ours)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, z.Bytes) {
				t.Errorf("Encode(Build(blob)) is %d bytes, SOCI's zTOC %d, and they differ", len(b), len(z.Bytes))
			}
			checkFilesRead(t, socitest.ReadBackZtoc(t, b, tc.blob), want.files())
		})
	}
}
