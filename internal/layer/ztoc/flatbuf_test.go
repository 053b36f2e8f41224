package ztoc

import (
	"encoding/binary"
	"strings"
	"testing"

	flatbuffers "github.com/google/flatbuffers/go"
)

// tiny is a flatbuffer of one table: a string "hello" in slot 0, a vector
// of two strings in slot 1 and a long 7 in slot 2. It returns where the
// table, its vtable, the string and the vector are.
func tiny() (b []byte, table, vtable, str, vec int) {
	fb := flatbuffers.NewBuilder(0)
	s := fb.CreateString("hello")
	e0, e1 := fb.CreateString("a"), fb.CreateString("b")
	fb.StartVector(4, 2, 4)
	fb.PrependUOffsetT(e1)
	fb.PrependUOffsetT(e0)
	v := fb.EndVector(2)
	fb.StartObject(3)
	fb.PrependUOffsetTSlot(0, s, 0)
	fb.PrependUOffsetTSlot(1, v, 0)
	fb.PrependInt64Slot(2, 7, 0)
	fb.Finish(fb.EndObject())
	b = fb.FinishedBytes()
	le := binary.LittleEndian
	table = int(le.Uint32(b))
	vtable = table - int(int32(le.Uint32(b[table:])))
	field := func(slot int) int { return table + int(le.Uint16(b[vtable+4+2*slot:])) }
	str = field(0) + int(le.Uint32(b[field(0):]))
	vec = field(1) + int(le.Uint32(b[field(1):]))
	return b, table, vtable, str, vec
}

// TestReader reads the tiny buffer whole.
func TestReader(t *testing.T) {
	b, _, _, _, _ := tiny()
	root, err := newBuffer(b).root()
	if err != nil {
		t.Fatal(err)
	}
	s, ok, err := root.string(0, 100, "s")
	if s != "hello" || !ok || err != nil {
		t.Errorf("string: %q %v %v", s, ok, err)
	}
	v, err := root.vector(1, 4, "v")
	if err != nil || v.n != 2 {
		t.Fatalf("vector: %d %v", v.n, err)
	}
	if e, err := v.string(1, 100, "v[1]"); e != "b" || err != nil {
		t.Errorf("vector element: %q %v", e, err)
	}
	if n, err := root.int64(2, 0, "n"); n != 7 || err != nil {
		t.Errorf("long: %d %v", n, err)
	}
	// A slot past the vtable is absent and takes its default, as for a
	// field an older writer did not know.
	if n, err := root.int64(9, 42, "n"); n != 42 || err != nil {
		t.Errorf("absent long: %d %v", n, err)
	}
	if _, ok, err := root.table(5, "t"); ok || err != nil {
		t.Errorf("absent table: %v %v", ok, err)
	}
}

// TestReaderRejects breaks the tiny buffer one offset at a time; each read
// must fail with an error, not a panic.
func TestReaderRejects(t *testing.T) {
	le := binary.LittleEndian
	for _, tt := range []struct {
		name   string
		edit   func(b []byte, table, vtable, str, vec int) []byte
		substr string
	}{
		{"too short", func(b []byte, _, _, _, _ int) []byte { return b[:3] }, "too short for a flatbuffer"},
		{"root past the end", func(b []byte, _, _, _, _ int) []byte {
			le.PutUint32(b, uint32(len(b)))
			return b
		}, "points past the end"},
		{"vtable before the buffer", func(b []byte, table, _, _, _ int) []byte {
			le.PutUint32(b[table:], uint32(table+4))
			return b
		}, "is outside the buffer"},
		{"vtable after the buffer", func(b []byte, table, _, _, _ int) []byte {
			le.PutUint32(b[table:], uint32(int32(-len(b))))
			return b
		}, "is outside the buffer"},
		{"odd vtable length", func(b []byte, _, vtable, _, _ int) []byte {
			le.PutUint16(b[vtable:], 7)
			return b
		}, "not a whole number of fields"},
		{"vtable past the end", func(b []byte, _, vtable, _, _ int) []byte {
			le.PutUint16(b[vtable:], 0xfffe)
			return b
		}, "runs past the end"},
		{"object past the end", func(b []byte, _, vtable, _, _ int) []byte {
			le.PutUint16(b[vtable+2:], 0xffff)
			return b
		}, "does not fit"},
		{"field past its object", func(b []byte, _, vtable, _, _ int) []byte {
			le.PutUint16(b[vtable+2:], 4)
			return b
		}, "runs past its table"},
		{"string length past the end", func(b []byte, _, _, str, _ int) []byte {
			le.PutUint32(b[str:], 99)
			return b
		}, "run past the end"},
		{"string without its NUL", func(b []byte, _, _, str, _ int) []byte {
			b[str+4+5] = 'x'
			return b
		}, "has no NUL"},
		{"string over the limit", func(b []byte, _, _, str, _ int) []byte {
			le.PutUint32(b[str:], 101)
			return b
		}, "over the limit of 100"},
		{"vector past the end", func(b []byte, _, _, _, vec int) []byte {
			le.PutUint32(b[vec:], 0xffffffff)
			return b
		}, "run past the end"},
		{"vector element past the end", func(b []byte, _, _, _, vec int) []byte {
			le.PutUint32(b[vec+8:], 0xfffffff0)
			return b
		}, "points past the end"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, table, vtable, str, vec := tiny()
			b = tt.edit(b, table, vtable, str, vec)
			err := readAll(b)
			if err == nil || !strings.Contains(err.Error(), tt.substr) {
				t.Errorf("got %v, want an error with %q", err, tt.substr)
			}
		})
	}
}

// readAll reads every field of the tiny buffer and returns the first
// error.
func readAll(b []byte) error {
	root, err := newBuffer(b).root()
	if err != nil {
		return err
	}
	if _, _, err := root.string(0, 100, "s"); err != nil {
		return err
	}
	v, err := root.vector(1, 4, "v")
	if err != nil {
		return err
	}
	for i := 0; i < v.n; i++ {
		if _, err := v.string(i, 100, "v[i]"); err != nil {
			return err
		}
	}
	_, err = root.int64(2, 0, "n")
	return err
}

// TestBudget holds that reading one object many times runs out of budget.
func TestBudget(t *testing.T) {
	b, _, _, _, _ := tiny()
	root, err := newBuffer(b).root()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if _, _, err := root.string(0, 100, "s"); err != nil {
			if !strings.Contains(err.Error(), "refers to more data than it holds") {
				t.Fatal(err)
			}
			if i < 2 {
				t.Errorf("out of budget after %d reads", i)
			}
			return
		}
	}
}
