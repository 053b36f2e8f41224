package ztoc

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// zcp is a checkpoint as the zinfo blob records it.
type zcp struct {
	in, out int64
	bits    uint8
}

// zinfoBlob packs checkpoints as SOCI's zinfo_to_blob does. With v1, the
// first checkpoint is left out of the packing but counted, as version 1
// did. Window i is filled with byte i+1, so the tests can tell them apart.
func zinfoBlob(spanSize int64, v1 bool, cps ...zcp) []byte {
	return zinfoBlobWindow(WindowSize, spanSize, v1, cps...)
}

// zinfoBlobWindow is zinfoBlob with windows of another size, for the fuzz
// target.
func zinfoBlobWindow(window int, spanSize int64, v1 bool, cps ...zcp) []byte {
	blob := binary.LittleEndian.AppendUint32(nil, uint32(len(cps)))
	blob = binary.LittleEndian.AppendUint64(blob, uint64(spanSize))
	for i, cp := range cps {
		if v1 && i == 0 {
			continue
		}
		blob = binary.LittleEndian.AppendUint64(blob, uint64(cp.in))
		blob = binary.LittleEndian.AppendUint64(blob, uint64(cp.out))
		blob = append(blob, cp.bits)
		for range window {
			blob = append(blob, byte(i+1))
		}
	}
	return blob
}

// TestDecodeZinfo reads both versions of the blob and converts SOCI's
// "bits from the byte before in" into the bit where the block starts.
func TestDecodeZinfo(t *testing.T) {
	cps := []zcp{{in: 10}, {in: 40000, out: 5000, bits: 3}, {in: 70000, out: 9000, bits: 7}}
	want := []Checkpoint{{Out: 0, In: 10}, {Out: 5000, In: 39999, Bits: 5}, {Out: 9000, In: 69999, Bits: 1}}
	for _, v1 := range []bool{false, true} {
		spanSize, got, err := decodeZinfo(zinfoBlob(4096, v1, cps...), 100000, WindowSize)
		if err != nil {
			t.Fatal(err)
		}
		if spanSize != 4096 || len(got) != len(want) {
			t.Fatalf("v1 %v: span size %d, %d checkpoints", v1, spanSize, len(got))
		}
		for i, cp := range got {
			if cp.Out != want[i].Out || cp.In != want[i].In || cp.Bits != want[i].Bits {
				t.Errorf("v1 %v: checkpoint %d: got %+v, want %+v", v1, i, cp, want[i])
			}
			fill := byte(i + 1)
			if v1 && i == 0 {
				fill = 0 // version 1's implied first window is zeros
			}
			if !bytes.Equal(cp.Window, bytes.Repeat([]byte{fill}, WindowSize)) {
				t.Errorf("v1 %v: checkpoint %d: window is not its own", v1, i)
			}
		}
	}
}

// TestDecodeZinfoLength holds that the count is checked against the
// blob's length before anything is allocated for it.
func TestDecodeZinfoLength(t *testing.T) {
	blob := zinfoBlob(4096, false, zcp{in: 10})
	binary.LittleEndian.PutUint32(blob, 1<<31-1)
	if _, _, err := decodeZinfo(blob, 100000, WindowSize); err == nil {
		t.Fatal("a count of 2^31-1 in one checkpoint's bytes was accepted")
	}
}

// TestEncodeZinfo packs checkpoints in imgfs's terms and reads them back
// through decodeZinfo: the bits convert both ways, and a short window is
// the end of a zeroed one.
func TestEncodeZinfo(t *testing.T) {
	w := bytes.Repeat([]byte{7}, WindowSize)
	cps := []Checkpoint{
		{Out: 0, In: 10, Window: []byte("abc")},
		{Out: 5000, In: 39999, Bits: 5, Window: w},
		{Out: 9000, In: 69999, Bits: 1, Window: w},
		{Out: 9999, In: 70001, Window: w},
	}
	blob, err := encodeZinfo(4096, 100000, cps)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(blob)) != zinfoSize(len(cps)) {
		t.Fatalf("%d bytes", len(blob))
	}
	// In SOCI's terms: the first whole byte after the block's first bit,
	// and the bits taken from the byte before.
	for i, want := range []zcp{{in: 10}, {in: 40000, out: 5000, bits: 3}, {in: 70000, out: 9000, bits: 7}, {in: 70001, out: 9999}} {
		p := blob[zinfoHeader+i*(checkpointFixed+WindowSize):]
		got := zcp{in: int64(binary.LittleEndian.Uint64(p)), out: int64(binary.LittleEndian.Uint64(p[8:])), bits: p[16]}
		if got != want {
			t.Errorf("checkpoint %d packed as %+v, want %+v", i, got, want)
		}
	}
	spanSize, back, err := decodeZinfo(blob, 100000, WindowSize)
	if err != nil {
		t.Fatal(err)
	}
	if spanSize != 4096 || len(back) != len(cps) {
		t.Fatalf("span size %d, %d checkpoints", spanSize, len(back))
	}
	first := append(make([]byte, WindowSize-3), "abc"...)
	for i, c := range back {
		want := cps[i]
		if i == 0 {
			want.Window = first
		}
		if c.Out != want.Out || c.In != want.In || c.Bits != want.Bits || !bytes.Equal(c.Window, want.Window) {
			t.Errorf("checkpoint %d read back as %+v", i, c)
		}
	}
}
