package layer

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// zstdFrames compresses b as one frame per piece of the given size (0: one
// frame), the way a chunking encoder would.
func zstdFrames(t testing.TB, b []byte, piece int) []byte {
	var out bytes.Buffer
	if piece == 0 {
		piece = len(b)
	}
	for len(b) > 0 {
		w, err := zstd.NewWriter(&out, zstd.WithEncoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		n := min(piece, len(b))
		w.Write(b[:n])
		w.Close()
		b = b[n:]
	}
	return out.Bytes()
}

func TestZstdIndexAndRead(t *testing.T) {
	raw, contents := testLayer(t, 1)
	for _, piece := range []int{0, 100 << 10} {
		t.Run(fmt.Sprintf("frames-of-%d", piece), func(t *testing.T) {
			blob := zstdFrames(t, raw, piece)
			// A skippable frame in the middle is passed over.
			blob = append(blob, 0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 'a', 'b', 'c')
			idx, err := BuildZstd(bytes.NewReader(blob), BuildOptions{Spacing: 256 << 10})
			if err != nil {
				t.Fatal(err)
			}
			want, _ := BuildTar(bytes.NewReader(raw))
			if fmt.Sprint(idx.Entries) != fmt.Sprint(want.Entries) || idx.BlobSize != int64(len(blob)) {
				t.Fatal("entries or size differ")
			}
			// One frame gives one checkpoint, plus one at the skippable frame.
			if piece == 0 && len(idx.Checkpoints) != 2 || piece != 0 && len(idx.Checkpoints) < 4 {
				t.Fatalf("%d checkpoints", len(idx.Checkpoints))
			}
			l, err := NewLayer(idx, &recordingSource{b: blob})
			if err != nil {
				t.Fatal(err)
			}
			checkReads(t, l, contents)
		})
	}
}

func TestZstdTruncated(t *testing.T) {
	raw, _ := testLayer(t, 1)
	blob := zstdFrames(t, raw, 100<<10)
	idx, err := BuildZstd(bytes.NewReader(blob[:len(blob)/2]), BuildOptions{})
	var se *StreamError
	if !errors.As(err, &se) || len(idx.Entries) == 0 || se.After == "" {
		t.Fatalf("err %v, %d entries", err, len(idx.Entries))
	}
}
