package layer

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/imgfs/imgfs/internal/oci"
)

// The serialized index: the 8-byte magic, a version byte, then a raw
// deflate stream of varint-encoded fields (see marshal). It is
// deterministic for a given Go release: the same index gives the same
// bytes, so nodes that index the same layer agree on its digest.
const (
	indexMagic   = "imgfsLV\x00"
	indexVersion = IndexVersion
	// MaxIndexSize bounds a decoded index body.
	MaxIndexSize = 1 << 30
	windowSize   = 32 << 10
)

// IndexVersion is the version of the serialized index this package writes.
// A store keys indexes by it as well as by the layer digest, so a new
// version never reads an old one.
const IndexVersion = 1

// ErrIndexFormat means bytes are not an index this version can read.
var ErrIndexFormat = errors.New("layer: not a layer index of a known version")

// MarshalBinary serializes the index. The body goes to the compressor in
// pieces as it is encoded, so serializing holds the output and one piece,
// not the whole uncompressed body (tens of MB for a layer of a million
// entries); deflate's output does not depend on how its input was cut.
func (x *Index) MarshalBinary() ([]byte, error) {
	var out bytes.Buffer
	out.WriteString(indexMagic)
	out.WriteByte(indexVersion)
	zw, err := flate.NewWriter(&out, 6)
	if err != nil {
		return nil, err
	}
	if err := x.writeBody(zw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// bodyPiece is how much of the encoded body writeBody holds before it
// writes it out.
const bodyPiece = 64 << 10

// writeBody writes the encoded body (see appendBody) to w, a piece at a
// time.
func (x *Index) writeBody(w io.Writer) error {
	b := make([]byte, 0, 2*bodyPiece)
	flush := func(force bool) error {
		if len(b) < bodyPiece && !force {
			return nil
		}
		_, err := w.Write(b)
		b = b[:0]
		return err
	}
	b = x.appendHead(b)
	var prev int64
	for i := range x.Entries {
		b = appendEntry(b, &x.Entries[i], &prev)
		if err := flush(false); err != nil {
			return err
		}
	}
	b = binary.AppendUvarint(b, uint64(len(x.Checkpoints)))
	var pin, pout int64
	for i := range x.Checkpoints {
		b = appendCheckpoint(b, &x.Checkpoints[i], &pin, &pout)
		if err := flush(false); err != nil {
			return err
		}
	}
	return flush(true)
}

// appendBody appends the whole encoded body to b.
func (x *Index) appendBody(b []byte) []byte {
	b = x.appendHead(b)
	var prev int64
	for i := range x.Entries {
		b = appendEntry(b, &x.Entries[i], &prev)
	}
	b = binary.AppendUvarint(b, uint64(len(x.Checkpoints)))
	var pin, pout int64
	for i := range x.Checkpoints {
		b = appendCheckpoint(b, &x.Checkpoints[i], &pin, &pout)
	}
	return b
}

func (x *Index) appendHead(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(x.Format))
	b = binary.AppendVarint(b, x.BlobSize)
	b = binary.AppendVarint(b, x.TarSize)
	b = appendString(b, x.Err)
	return binary.AppendUvarint(b, uint64(len(x.Entries)))
}

// appendEntry appends e; prev is the previous entry's Offset, which it
// advances.
func appendEntry(b []byte, e *Entry, prev *int64) []byte {
	b = appendString(b, e.Name)
	b = append(b, byte(e.Type))
	b = binary.AppendUvarint(b, uint64(e.Mode))
	b = binary.AppendVarint(b, int64(e.UID))
	b = binary.AppendVarint(b, int64(e.GID))
	b = binary.AppendVarint(b, e.MTime)
	b = binary.AppendUvarint(b, uint64(e.MTimeNsec))
	b = binary.AppendVarint(b, e.Size)
	b = appendString(b, e.Linkname)
	keys := make([]string, 0, len(e.Xattrs))
	for k := range e.Xattrs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendString(b, k)
		b = appendString(b, e.Xattrs[k])
	}
	b = binary.AppendVarint(b, e.Devmajor)
	b = binary.AppendVarint(b, e.Devminor)
	b = binary.AppendVarint(b, e.Offset-*prev)
	*prev = e.Offset
	b = binary.AppendVarint(b, e.DataOffset-e.Offset)
	var flags byte
	if e.Sparse {
		flags |= 1
	}
	b = append(b, flags)
	return appendString(b, e.Bad)
}

// appendCheckpoint appends c; pin and pout are the previous checkpoint's
// offsets, which it advances.
func appendCheckpoint(b []byte, c *Checkpoint, pin, pout *int64) []byte {
	b = binary.AppendVarint(b, c.In-*pin)
	b = binary.AppendVarint(b, c.Out-*pout)
	*pin, *pout = c.In, c.Out
	flags := c.Bits & 7
	if c.Member {
		flags |= 8
	}
	b = append(b, flags)
	b = appendString(b, string(c.Window))
	return append(b, c.SpanDigest[:]...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// UnmarshalIndex decodes a serialized index. It never trusts the input:
// every count and length is checked against what remains.
func UnmarshalIndex(data []byte) (*Index, error) {
	if len(data) < len(indexMagic)+1 || string(data[:len(indexMagic)]) != indexMagic {
		return nil, ErrIndexFormat
	}
	if data[len(indexMagic)] != indexVersion {
		return nil, fmt.Errorf("%w: version %d", ErrIndexFormat, data[len(indexMagic)])
	}
	zr := flate.NewReader(bytes.NewReader(data[len(indexMagic)+1:]))
	body, err := io.ReadAll(io.LimitReader(zr, MaxIndexSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrIndexFormat, err)
	}
	if len(body) > MaxIndexSize {
		return nil, fmt.Errorf("%w: body over %d bytes", ErrIndexFormat, MaxIndexSize)
	}
	d := decoder{b: body}
	x := d.index()
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: %v", ErrIndexFormat, d.err)
	}
	return x, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = errors.New(what)
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail("short")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bytes(n uint64) []byte {
	if n > uint64(len(d.b)) {
		d.fail("length past the end")
		return nil
	}
	s := d.b[:n:n]
	d.b = d.b[n:]
	return s
}

func (d *decoder) string() string { return string(d.bytes(d.uvarint())) }

// count reads a count of items each at least min bytes long.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/min) {
		d.fail("count past the end")
		return 0
	}
	return int(n)
}

func (d *decoder) index() *Index {
	x := &Index{}
	x.Format = oci.LayerFormat(d.uvarint())
	x.BlobSize = d.varint()
	x.TarSize = d.varint()
	x.Err = d.string()
	n := d.count(16)
	if n > MaxEntries() {
		d.fail(tooManyEntries(MaxEntries()))
		return x
	}
	if n > 0 {
		x.Entries = make([]Entry, n)
	}
	var prev int64
	for i := range x.Entries {
		e := &x.Entries[i]
		e.Name = d.string()
		e.Type = Type(d.byte())
		e.Mode = uint16(d.uvarint() & 07777)
		e.UID = int(d.varint())
		e.GID = int(d.varint())
		sec := d.varint()
		nsec := d.uvarint()
		if nsec >= 1e9 {
			d.fail("bad nanoseconds")
		}
		e.MTime, e.MTimeNsec = sec, uint32(nsec)
		e.Size = d.varint()
		e.Linkname = d.string()
		if n := d.count(2); n > 0 {
			e.Xattrs = make(map[string]string, n)
			for range n {
				k := d.string()
				e.Xattrs[k] = d.string()
			}
		}
		e.Devmajor = d.varint()
		e.Devminor = d.varint()
		e.Offset = prev + d.varint()
		prev = e.Offset
		e.DataOffset = e.Offset + d.varint()
		e.Sparse = d.byte()&1 != 0
		e.Bad = d.string()
		if d.err != nil {
			return nil
		}
	}
	if n := d.count(36); n > 0 {
		x.Checkpoints = make([]Checkpoint, n)
	}
	var pin, pout int64
	for i := range x.Checkpoints {
		c := &x.Checkpoints[i]
		c.In = pin + d.varint()
		c.Out = pout + d.varint()
		if i > 0 && (c.In < pin || c.Out < pout) {
			d.fail("checkpoints out of order")
		}
		pin, pout = c.In, c.Out
		flags := d.byte()
		c.Bits, c.Member = flags&7, flags&8 != 0
		if c.Window = d.bytes(d.uvarint()); len(c.Window) == 0 {
			c.Window = nil
		}
		if len(c.Window) > windowSize {
			d.fail("window over 32 KiB")
		}
		copy(c.SpanDigest[:], d.bytes(32))
		if d.err != nil {
			return nil
		}
	}
	return x
}
