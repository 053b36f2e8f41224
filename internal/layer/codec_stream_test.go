package layer

import (
	"bytes"
	"compress/flate"
	"fmt"
	"testing"
)

// TestMarshalInPiecesSameBytes: MarshalBinary, which compresses the body a
// piece at a time, writes exactly the bytes of the whole body compressed
// at once, so stored indexes keep their digests.
func TestMarshalInPiecesSameBytes(t *testing.T) {
	var files []file
	for i := range 3000 {
		files = append(files, reg(fmt.Sprintf("usr/share/doc/pkg%04d/copyright", i), "x"))
	}
	idx := mustIndex(t, files...)
	idx.Checkpoints = []Checkpoint{{Window: bytes.Repeat([]byte("w"), windowSize)}, {In: 10, Out: 1 << 20, Window: bytes.Repeat([]byte("v"), windowSize)}}
	body := idx.appendBody(nil)
	if len(body) < 3*bodyPiece {
		t.Fatalf("a body of %d bytes proves nothing", len(body))
	}
	var want bytes.Buffer
	want.WriteString(indexMagic)
	want.WriteByte(indexVersion)
	zw, _ := flate.NewWriter(&want, 6)
	zw.Write(body)
	zw.Close()
	got, err := idx.MarshalBinary()
	if err != nil || !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("MarshalBinary: %d bytes, %v; the whole body compressed at once: %d bytes", len(got), err, want.Len())
	}
	back, err := UnmarshalIndex(got)
	if err != nil || len(back.Entries) != len(idx.Entries) || back.Entries[2999].Name != idx.Entries[2999].Name {
		t.Fatalf("round trip: %v", err)
	}
}
