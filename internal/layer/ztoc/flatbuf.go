package ztoc

import (
	"fmt"
	"math"

	flatbuffers "github.com/google/flatbuffers/go"
)

// The flatbuffers runtime reads by indexing the buffer directly and
// panics on an offset past its end. So every read here is checked first:
// a table's vtable and object must lie in the buffer before the runtime
// looks a field up, and a field, string or vector must lie in the buffer
// (and in its object) before the runtime reads it. This is the
// flatbuffers verifier's job, done as each field is read rather than in a
// pass of its own, for only the fields Parse reads.

// uOffset is a position in the buffer.
type uOffset = flatbuffers.UOffsetT

// maxBuffer is the largest flatbuffer: offsets are 32-bit, and soffsets
// signed.
const maxBuffer = 1<<31 - 1

// buffer is a flatbuffer under check, with the budget of bytes its reads
// may still charge.
//
// Flatbuffers let many offsets point at one object, so a small buffer can
// name one string or table a million times. Each table, vector and string
// read is charged its size; objects that are not shared add up to at most
// the buffer's length, and the budget is twice that, which leaves room for
// a writer that shares strings. A zTOC that points many places at one
// object to multiply the work or memory of reading it runs out of budget.
type buffer struct {
	b      []byte
	budget int64
}

func newBuffer(b []byte) *buffer {
	return &buffer{b: b, budget: 2 * int64(len(b))}
}

// charge spends n bytes of the budget.
func (buf *buffer) charge(n int64, what string) error {
	if n > buf.budget {
		return fmt.Errorf("%s: the flatbuffer refers to more data than it holds (shared objects?)", what)
	}
	buf.budget -= n
	return nil
}

// has reports whether n bytes at off lie in the buffer. The arithmetic is
// in uint64 so that no sum of 32-bit values wraps.
func (buf *buffer) has(off, n uint64) bool {
	return off <= uint64(len(buf.b)) && n <= uint64(len(buf.b))-off
}

// root opens the root table, whose offset is the buffer's first word.
func (buf *buffer) root() (table, error) {
	if !buf.has(0, flatbuffers.SizeUOffsetT) {
		return table{}, fmt.Errorf("%d bytes is too short for a flatbuffer", len(buf.b))
	}
	return buf.tableAt(0, "root table")
}

// table is a flatbuffer table whose vtable and object lie in the buffer.
type table struct {
	buf   *buffer
	fb    flatbuffers.Table
	vtLen flatbuffers.VOffsetT // bytes of the vtable, its two header fields included
	size  flatbuffers.VOffsetT // bytes of the object, its soffset included
}

// tableAt opens the table that the uoffset at off points to.
func (buf *buffer) tableAt(off uOffset, what string) (table, error) {
	pos, err := buf.follow(off, what)
	if err != nil {
		return table{}, err
	}
	if !buf.has(uint64(pos), flatbuffers.SizeSOffsetT) {
		return table{}, fmt.Errorf("%s at %d: past the end of the buffer (%d bytes)", what, pos, len(buf.b))
	}
	vt := int64(pos) - int64(flatbuffers.GetSOffsetT(buf.b[pos:]))
	if vt < 0 || !buf.has(uint64(vt), 2*flatbuffers.SizeVOffsetT) {
		return table{}, fmt.Errorf("%s at %d: vtable at %d is outside the buffer", what, pos, vt)
	}
	vtLen := flatbuffers.GetVOffsetT(buf.b[vt:])
	size := flatbuffers.GetVOffsetT(buf.b[vt+flatbuffers.SizeVOffsetT:])
	switch {
	case vtLen < 2*flatbuffers.SizeVOffsetT || vtLen%2 != 0:
		return table{}, fmt.Errorf("%s at %d: vtable length %d is not a whole number of fields", what, pos, vtLen)
	case !buf.has(uint64(vt), uint64(vtLen)):
		return table{}, fmt.Errorf("%s at %d: vtable of %d bytes at %d runs past the end of the buffer", what, pos, vtLen, vt)
	case size < flatbuffers.SizeSOffsetT || !buf.has(uint64(pos), uint64(size)):
		return table{}, fmt.Errorf("%s at %d: object of %d bytes does not fit in the buffer", what, pos, size)
	}
	if err := buf.charge(int64(size), what); err != nil {
		return table{}, err
	}
	return table{buf: buf, fb: flatbuffers.Table{Bytes: buf.b, Pos: pos}, vtLen: vtLen, size: size}, nil
}

// follow returns where the uoffset at off points.
func (buf *buffer) follow(off uOffset, what string) (uOffset, error) {
	if !buf.has(uint64(off), flatbuffers.SizeUOffsetT) {
		return 0, fmt.Errorf("%s: offset at %d is past the end of the buffer", what, off)
	}
	to := uint64(off) + uint64(flatbuffers.GetUOffsetT(buf.b[off:]))
	if to >= uint64(len(buf.b)) {
		return 0, fmt.Errorf("%s: offset at %d points past the end of the buffer", what, off)
	}
	return uOffset(to), nil
}

// field returns the position of field slot, n bytes wide, or false when
// the table leaves it out (its default then applies).
func (t table) field(slot int, n uint16, what string) (uOffset, bool, error) {
	vo := flatbuffers.VOffsetT(2*flatbuffers.SizeVOffsetT + 2*slot)
	if vo+flatbuffers.SizeVOffsetT > t.vtLen {
		return 0, false, nil // an older writer's shorter vtable
	}
	fo := t.fb.Offset(vo)
	if fo == 0 {
		return 0, false, nil
	}
	if uint32(fo)+uint32(n) > uint32(t.size) {
		return 0, false, fmt.Errorf("%s: field at %d runs past its table's %d bytes", what, fo, t.size)
	}
	return t.fb.Pos + uOffset(fo), true, nil
}

// int64 reads a long field, def when absent.
func (t table) int64(slot int, def int64, what string) (int64, error) {
	p, ok, err := t.field(slot, flatbuffers.SizeInt64, what)
	if !ok || err != nil {
		return def, err
	}
	return t.fb.GetInt64(p), nil
}

// int32 reads an int field, def when absent.
func (t table) int32(slot int, def int32, what string) (int32, error) {
	p, ok, err := t.field(slot, flatbuffers.SizeInt32, what)
	if !ok || err != nil {
		return def, err
	}
	return t.fb.GetInt32(p), nil
}

// uint32 reads a uint field, def when absent.
func (t table) uint32(slot int, def uint32, what string) (uint32, error) {
	p, ok, err := t.field(slot, flatbuffers.SizeUint32, what)
	if !ok || err != nil {
		return def, err
	}
	return t.fb.GetUint32(p), nil
}

// byte reads a byte (or byte enum) field, def when absent.
func (t table) byte(slot int, def byte, what string) (byte, error) {
	p, ok, err := t.field(slot, flatbuffers.SizeByte, what)
	if !ok || err != nil {
		return def, err
	}
	return t.fb.GetByte(p), nil
}

// table opens a table field; false when absent.
func (t table) table(slot int, what string) (table, bool, error) {
	p, ok, err := t.field(slot, flatbuffers.SizeUOffsetT, what)
	if !ok || err != nil {
		return table{}, false, err
	}
	sub, err := t.buf.tableAt(p, what)
	return sub, err == nil, err
}

// string reads a string field of at most max bytes; "" when absent.
func (t table) string(slot int, max int, what string) (string, bool, error) {
	p, ok, err := t.field(slot, flatbuffers.SizeUOffsetT, what)
	if !ok || err != nil {
		return "", false, err
	}
	s, err := t.buf.stringAt(p, max, what)
	return s, err == nil, err
}

// stringAt reads the string the uoffset at off points to: a uint32 length,
// at most max bytes and a NUL, which the flatbuffers verifier also
// requires. The string is copied, so the result does not hold on to the
// buffer (the runtime's Table.String would alias it).
func (buf *buffer) stringAt(off uOffset, max int, what string) (string, error) {
	start, n, err := buf.lengthPrefixed(off, 1, max, what)
	if err != nil {
		return "", err
	}
	if !buf.has(start+n, 1) || buf.b[start+n] != 0 {
		return "", fmt.Errorf("%s: the string at %d has no NUL after its %d bytes", what, start, n)
	}
	if err := buf.charge(flatbuffers.SizeUOffsetT+int64(n)+1, what); err != nil {
		return "", err
	}
	return string(buf.b[start : start+n]), nil
}

// lengthPrefixed finds the string or vector that the uoffset at off points
// to: a uint32 count of at most max, then that many elem-byte elements,
// all checked to lie in the buffer. It returns where the elements start
// and their count.
func (buf *buffer) lengthPrefixed(off uOffset, elem uint64, max int, what string) (start, n uint64, err error) {
	pos, err := buf.follow(off, what)
	if err != nil {
		return 0, 0, err
	}
	if !buf.has(uint64(pos), flatbuffers.SizeUOffsetT) {
		return 0, 0, fmt.Errorf("%s: length at %d is past the end of the buffer", what, pos)
	}
	n = uint64(flatbuffers.GetUOffsetT(buf.b[pos:]))
	start = uint64(pos) + flatbuffers.SizeUOffsetT
	switch {
	case n > uint64(max):
		return 0, 0, fmt.Errorf("%s: %d bytes, over the limit of %d", what, n*elem, max)
	case !buf.has(start, n*elem): // n < 1<<32 and elem <= 4: no overflow
		return 0, 0, fmt.Errorf("%s: %d elements of %d bytes at %d run past the end of the buffer", what, n, elem, pos)
	}
	return start, n, nil
}

// vector is a vector field whose elements lie in the buffer.
type vector struct {
	buf   *buffer
	start uOffset // position of the first element
	n     int
	elem  uOffset // bytes per element
}

// vector opens a vector field of elem-byte elements; an empty vector when
// absent. Its length is checked against the buffer, and charged, before
// anything is allocated for its elements.
func (t table) vector(slot int, elem uOffset, what string) (vector, error) {
	p, ok, err := t.field(slot, flatbuffers.SizeUOffsetT, what)
	if !ok || err != nil {
		return vector{buf: t.buf, elem: elem}, err
	}
	start, n, err := t.buf.lengthPrefixed(p, uint64(elem), math.MaxUint32, what)
	if err != nil {
		return vector{}, err
	}
	if err := t.buf.charge(flatbuffers.SizeUOffsetT+int64(n)*int64(elem), what); err != nil {
		return vector{}, err
	}
	return vector{buf: t.buf, start: uOffset(start), n: int(n), elem: elem}, nil
}

// bytes returns a byte-vector field of at most max bytes, without copying
// it; nil when absent.
func (t table) bytes(slot int, max int, what string) ([]byte, error) {
	p, ok, err := t.field(slot, flatbuffers.SizeUOffsetT, what)
	if !ok || err != nil {
		return nil, err
	}
	start, n, err := t.buf.lengthPrefixed(p, 1, max, what)
	if err != nil {
		return nil, err
	}
	if err := t.buf.charge(flatbuffers.SizeUOffsetT+int64(n), what); err != nil {
		return nil, err
	}
	return t.buf.b[start : start+n], nil
}

// at returns the position of element i, which must be below v.n.
func (v vector) at(i int) uOffset { return v.start + uOffset(i)*v.elem }

// table opens element i of a vector of tables.
func (v vector) table(i int, what string) (table, error) {
	return v.buf.tableAt(v.at(i), what)
}

// string reads element i of a vector of strings.
func (v vector) string(i int, max int, what string) (string, error) {
	return v.buf.stringAt(v.at(i), max, what)
}
