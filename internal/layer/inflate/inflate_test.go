package inflate

import (
	"bytes"
	"compress/gzip"
	"errors"
	"hash/crc32"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/iotest"

	"github.com/imgfs/imgfs/internal/layertest"
)

// boundary is one OnBoundary call.
type boundary struct {
	in     int64
	bits   uint8
	out    int64
	member bool
}

// inflateAll decodes b with the inflater, from a reader that yields it as
// r does, and records the boundaries it reports.
func inflateAll(b []byte, wrap func(io.Reader) io.Reader) ([]byte, []boundary, error) {
	var bs []boundary
	f := NewReader(wrap(bytes.NewReader(b)))
	f.OnBoundary = func(in int64, bits uint8, out int64, member bool) {
		bs = append(bs, boundary{in, bits, out, member})
	}
	out, err := io.ReadAll(f)
	return out, bs, err
}

func plainReader(r io.Reader) io.Reader { return r }

// refDecoder is a slow reference decoder for gzip streams, written
// straight from RFC 1951 and 1952 for these tests: it reads one bit at a
// time and decodes Huffman codes by canonical counting, as zlib's puff.c
// does. It accepts exactly what the inflater accepts and records the same
// block boundaries, so that a faster inflater can be checked against it.
type refDecoder struct {
	in     []byte
	pos    int64 // next bit
	out    []byte
	bounds []boundary
	// lenient is set when the stream relies on something compress/gzip
	// refuses but the inflater accepts: an incomplete Huffman code, a
	// header CRC that does not match, or a name or comment of 512 bytes
	// or more.
	lenient bool
}

var errRef = errors.New("reference decoder: bad stream")

func refInflate(in []byte) (*refDecoder, error) {
	d := &refDecoder{in: in}
	return d, d.run()
}

func (d *refDecoder) bits(n int) (uint32, error) {
	var v uint32
	for i := range n {
		if d.pos >= int64(len(d.in))*8 {
			return 0, errRef
		}
		v |= uint32(d.in[d.pos/8]>>(d.pos%8)&1) << i
		d.pos++
	}
	return v, nil
}

func (d *refDecoder) align() { d.pos = (d.pos + 7) &^ 7 }

func (d *refDecoder) run() error {
	for {
		d.align()
		if d.pos == int64(len(d.in))*8 {
			if d.pos == 0 {
				return errRef
			}
			return nil
		}
		d.bounds = append(d.bounds, boundary{d.pos / 8, 0, int64(len(d.out)), true})
		if err := d.header(); err != nil {
			return err
		}
		start := len(d.out)
		for final := uint32(0); final == 0; {
			d.bounds = append(d.bounds, boundary{d.pos / 8, uint8(d.pos % 8), int64(len(d.out)), false})
			h, err := d.bits(3)
			if err != nil {
				return err
			}
			final = h & 1
			if err := d.block(h>>1, start); err != nil {
				return err
			}
		}
		d.align()
		sum, err1 := d.bits(32)
		size, err2 := d.bits(32)
		if err1 != nil || err2 != nil || sum != crc32.ChecksumIEEE(d.out[start:]) || size != uint32(len(d.out)-start) {
			return errRef
		}
	}
}

func (d *refDecoder) header() error {
	start := d.pos / 8
	var h [10]byte
	for i := range h {
		v, err := d.bits(8)
		if err != nil {
			return err
		}
		h[i] = byte(v)
	}
	if h[0] != 0x1f || h[1] != 0x8b || h[2] != 8 {
		return errRef
	}
	if h[3]&4 != 0 {
		n, err := d.bits(16)
		if err != nil {
			return err
		}
		for range n {
			if _, err := d.bits(8); err != nil {
				return err
			}
		}
	}
	for _, flag := range []byte{8, 16} {
		if h[3]&flag == 0 {
			continue
		}
		for n := 1; ; n++ {
			c, err := d.bits(8)
			if err != nil {
				return err
			}
			if c == 0 {
				break
			}
			if n >= 512 {
				d.lenient = true
			}
		}
	}
	if h[3]&2 != 0 {
		sum := crc32.ChecksumIEEE(d.in[start : d.pos/8])
		v, err := d.bits(16)
		if err != nil {
			return err
		}
		if v != sum&0xffff {
			d.lenient = true
		}
	}
	return nil
}

// refHuffman is a canonical code: how many codes of each length, and the
// symbols in code order.
type refHuffman struct {
	count [16]int
	syms  []int
}

func (d *refDecoder) build(lens []uint8) (*refHuffman, error) {
	h := &refHuffman{}
	for _, l := range lens {
		h.count[l]++
	}
	h.count[0] = 0
	left, used := 1, 0
	for l := 1; l < 16; l++ {
		left = left<<1 - h.count[l]
		if left < 0 {
			return nil, errRef
		}
		used += h.count[l]
	}
	// compress/flate also takes a single code of length 1.
	if left > 0 && used > 0 && !(used == 1 && h.count[1] == 1) {
		d.lenient = true
	}
	for l := 1; l < 16; l++ {
		for sym, sl := range lens {
			if int(sl) == l {
				h.syms = append(h.syms, sym)
			}
		}
	}
	return h, nil
}

func (d *refDecoder) decode(h *refHuffman) (int, error) {
	code, first, index := 0, 0, 0
	for l := 1; l < 16; l++ {
		b, err := d.bits(1)
		if err != nil {
			return 0, err
		}
		code |= int(b)
		if code-first < h.count[l] {
			return h.syms[index+code-first], nil
		}
		index += h.count[l]
		first = (first + h.count[l]) << 1
		code <<= 1
	}
	return 0, errRef
}

func (d *refDecoder) block(typ uint32, memberStart int) error {
	var lit, dist *refHuffman
	switch typ {
	case 0:
		d.align()
		v, err := d.bits(32)
		if err != nil {
			return err
		}
		if uint16(v) != ^uint16(v>>16) {
			return errRef
		}
		for range uint16(v) {
			c, err := d.bits(8)
			if err != nil {
				return err
			}
			d.out = append(d.out, byte(c))
		}
		return nil
	case 1:
		var l [288 + 30]uint8
		for i := range l {
			l[i] = [...]uint8{8, 9, 7, 8, 5}[min(i/144, 1)+min(i/256, 1)+min(i/280, 1)+min(i/288, 1)]
		}
		// The fixed distance code is incomplete, which compress/flate
		// accepts too.
		lenient := d.lenient
		lit, _ = d.build(l[:288])
		dist, _ = d.build(l[288:])
		d.lenient = lenient
	case 2:
		var err error
		if lit, dist, err = d.dynamic(); err != nil {
			return err
		}
	default:
		return errRef
	}
	for {
		sym, err := d.decode(lit)
		if err != nil {
			return err
		}
		switch {
		case sym < 256:
			d.out = append(d.out, byte(sym))
			continue
		case sym == 256:
			return nil
		case sym > 285:
			return errRef
		}
		length := int(lenBase[sym-257])
		x, err := d.bits(int(lenExtra[sym-257]))
		if err != nil {
			return err
		}
		length += int(x)
		ds, err := d.decode(dist)
		if err != nil {
			return err
		}
		if ds >= 30 {
			return errRef
		}
		x, err = d.bits(int(dExtra[ds]))
		if err != nil {
			return err
		}
		back := int(dBase[ds]) + int(x)
		if back > len(d.out)-memberStart {
			return errRef
		}
		for range length {
			d.out = append(d.out, d.out[len(d.out)-back])
		}
	}
}

func (d *refDecoder) dynamic() (lit, dist *refHuffman, err error) {
	h, err := d.bits(14)
	if err != nil {
		return nil, nil, err
	}
	nlit, ndist, nclen := int(h&31)+257, int(h>>5&31)+1, int(h>>10)+4
	if nlit > 286 || ndist > 30 {
		return nil, nil, errRef
	}
	var lens [320]uint8
	for i := range nclen {
		v, err := d.bits(3)
		if err != nil {
			return nil, nil, err
		}
		lens[codeOrder[i]] = uint8(v)
	}
	clen, err := d.build(lens[:19])
	if err != nil {
		return nil, nil, err
	}
	clear(lens[:19])
	for i := 0; i < nlit+ndist; {
		sym, err := d.decode(clen)
		if err != nil {
			return nil, nil, err
		}
		if sym < 16 {
			lens[i] = uint8(sym)
			i++
			continue
		}
		rep, val := 0, uint8(0)
		switch sym {
		case 16:
			if i == 0 {
				return nil, nil, errRef
			}
			v, err := d.bits(2)
			if err != nil {
				return nil, nil, err
			}
			rep, val = 3+int(v), lens[i-1]
		case 17:
			v, err := d.bits(3)
			if err != nil {
				return nil, nil, err
			}
			rep = 3 + int(v)
		default:
			v, err := d.bits(7)
			if err != nil {
				return nil, nil, err
			}
			rep = 11 + int(v)
		}
		if i+rep > nlit+ndist {
			return nil, nil, errRef
		}
		for range rep {
			lens[i] = val
			i++
		}
	}
	if lens[256] == 0 {
		return nil, nil, errRef
	}
	if lit, err = d.build(lens[:nlit]); err != nil {
		return nil, nil, err
	}
	if dist, err = d.build(lens[nlit : nlit+ndist]); err != nil {
		return nil, nil, err
	}
	return lit, dist, nil
}

// gzipStreams are streams that between them use every kind of block,
// codes longer than the primary table, short and overlapping matches,
// full-window distances, sync flushes (empty stored blocks, boundaries in
// mid-byte) and several members. Their size grows with unit.
func gzipStreams(tb testing.TB, unit int) map[string][]byte {
	r := rand.New(rand.NewPCG(3, 3))
	text := layertest.Textish(5, 2*unit)
	noise := make([]byte, unit)
	for i := range noise {
		noise[i] = byte(r.Uint32())
	}
	// Rare symbols get long codes; runs and short periods give matches
	// that overlap by less than a word, and repeats 32 KiB back the
	// longest distance.
	var skewed []byte
	for len(skewed) < 3*unit {
		switch k := r.IntN(100); {
		case k < 3:
			skewed = append(skewed, bytes.Repeat([]byte{byte(r.IntN(256))}, 3+r.IntN(300))...)
		case k < 4 && len(skewed) >= 7:
			period := skewed[len(skewed)-1-r.IntN(7):]
			skewed = append(skewed, bytes.Repeat(period, 1+r.IntN(100))...)
		case k < 5 && len(skewed) > WindowSize:
			at := len(skewed) - WindowSize
			skewed = append(skewed, skewed[at:at+3+r.IntN(255)]...)
		default:
			skewed = append(skewed, byte(r.ExpFloat64()*6))
		}
	}
	mixed := slices.Concat(text, noise, skewed, text)
	flushed := func(level int) []byte {
		var b bytes.Buffer
		w, _ := gzip.NewWriterLevel(&b, level)
		for i, chunk := range slices.Collect(slices.Chunk(mixed, unit/13)) {
			w.Write(chunk)
			if i%5 == 2 {
				w.Flush()
			}
		}
		w.Close()
		return b.Bytes()
	}
	named := func(name, comment string, b []byte) []byte {
		var z bytes.Buffer
		w, _ := gzip.NewWriterLevel(&z, gzip.BestSpeed)
		w.Name, w.Comment, w.Extra = name, comment, []byte("xx")
		w.Write(b)
		w.Close()
		return z.Bytes()
	}
	return map[string][]byte{
		"empty":       layertest.Gzip(nil, 6),
		"tiny-fixed":  layertest.Gzip([]byte("hello, hello, hello world\n"), 6),
		"store":       layertest.Gzip(mixed, gzip.NoCompression),
		"huffman":     layertest.Gzip(mixed, gzip.HuffmanOnly),
		"speed":       layertest.Gzip(mixed, gzip.BestSpeed),
		"default":     layertest.Gzip(mixed, gzip.DefaultCompression),
		"best":        layertest.Gzip(mixed, gzip.BestCompression),
		"skewed":      layertest.Gzip(skewed, 6),
		"flushed-1":   flushed(1),
		"flushed-9":   flushed(9),
		"members":     slices.Concat(layertest.Gzip(text, 1), layertest.Gzip(nil, 6), named("a.txt", "c", noise), layertest.Gzip(skewed, 9)),
		"header-flds": named("name", "comment", text),
	}
}

// TestInflateBoundaries checks the output and the block boundaries
// against the reference decoder, with input arriving in chunks of all
// sizes, and that decoding from each boundary, given the window before it,
// yields the rest of the stream.
func TestInflateBoundaries(t *testing.T) {
	for name, blob := range gzipStreams(t, 80_000) {
		t.Run(name, func(t *testing.T) {
			ref, err := refInflate(blob)
			if err != nil {
				t.Fatal(err)
			}
			if ref.lenient {
				t.Fatal("reference decoder relied on leniency")
			}
			if len(ref.out) > 0 && len(ref.bounds) < 3 {
				t.Fatalf("only %d boundaries", len(ref.bounds))
			}
			for rname, wrap := range map[string]func(io.Reader) io.Reader{
				"whole": plainReader, "one-byte": iotest.OneByteReader, "half": iotest.HalfReader,
			} {
				out, bs, err := inflateAll(blob, wrap)
				if err != nil {
					t.Fatalf("%s: %v", rname, err)
				}
				if !bytes.Equal(out, ref.out) {
					t.Fatalf("%s: output differs", rname)
				}
				if !slices.Equal(bs, ref.bounds) {
					t.Fatalf("%s: boundaries differ:\n%v\n%v", rname, bs, ref.bounds)
				}
			}
			checkResume(t, blob, ref.out, ref.bounds, len(ref.bounds))
		})
	}
}

// checkResume decodes from up to n of the boundaries bs of blob with a
// fresh inflater, as a checkpoint reader does, and compares with the rest
// of out.
func checkResume(t *testing.T, blob, out []byte, bs []boundary, n int) {
	t.Helper()
	var memberStart int64
	for i, b := range bs[:min(n, len(bs))] {
		c := Checkpoint{In: b.in, Bits: b.bits, Out: b.out, Member: b.member}
		if b.member {
			memberStart = b.out
		} else {
			c.Window = out[max(b.out-WindowSize, memberStart):b.out]
		}
		f, err := Resume(bytes.NewReader(blob[c.In:]), c)
		if err != nil {
			t.Fatalf("boundary %d %+v: %v", i, b, err)
		}
		got, err := io.ReadAll(f)
		if err != nil || !bytes.Equal(got, out[b.out:]) {
			t.Fatalf("from boundary %d %+v: %d bytes of %d, %v", i, b, len(got), len(out)-int(b.out), err)
		}
	}
}

// TestInflateErrors checks what a broken stream reports: which error, and
// at which compressed byte.
// bitWriter assembles deflate data by hand.
type bitWriter struct {
	b    []byte
	nbit int
}

// bits appends the n low bits of v, low bit first, as deflate packs
// header fields and extra bits.
func (w *bitWriter) bits(v uint32, n int) *bitWriter {
	for i := range n {
		if w.nbit%8 == 0 {
			w.b = append(w.b, 0)
		}
		w.b[len(w.b)-1] |= byte(v>>i&1) << (w.nbit % 8)
		w.nbit++
	}
	return w
}

// code appends an n-bit Huffman code, high bit first.
func (w *bitWriter) code(c uint32, n int) *bitWriter {
	for i := n - 1; i >= 0; i-- {
		w.bits(c>>i&1, 1)
	}
	return w
}

// fixedLitCode appends literal/length symbol sym of the fixed code.
func (w *bitWriter) fixedLit(sym uint32) *bitWriter {
	switch {
	case sym < 144:
		return w.code(0x30+sym, 8)
	case sym < 256:
		return w.code(0x190+sym-144, 9)
	case sym < 280:
		return w.code(sym-256, 7)
	}
	return w.code(0xc0+sym-280, 8)
}

// TestInflateErrors checks what a broken stream reports: which error, and
// at which compressed byte.
func TestInflateErrors(t *testing.T) {
	hello := layertest.Gzip([]byte("hello, hello, hello world\n"), 6)
	head := hello[:10]
	deflate := func(w *bitWriter) []byte { return slices.Concat(head, w.b) }
	fixed := func() *bitWriter { return new(bitWriter).bits(1, 1).bits(1, 2) }
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "unexpected EOF (compressed byte 0)"},
		{"magic", set(hello, 1, 0x8c), "gzip: invalid header (compressed byte 10)"},
		{"method", set(hello, 2, 7), "gzip: invalid header (compressed byte 10)"},
		{"in-header", hello[:7], "unexpected EOF (compressed byte 7)"},
		{"in-block", hello[:14], "unexpected EOF (compressed byte 13)"},
		{"in-trailer", hello[:len(hello)-3], "unexpected EOF (compressed byte 37)"},
		{"checksum", set(hello, len(hello)-8, hello[len(hello)-8]^1), "gzip: checksum or size mismatch (compressed byte 40)"},
		{"size", set(hello, len(hello)-1, 1), "gzip: checksum or size mismatch (compressed byte 40)"},
		{"garbage-after", append(bytes.Clone(hello), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11), "gzip: invalid header (compressed byte 50)"},
		{"block-type-3", deflate(new(bitWriter).bits(1, 1).bits(3, 2)), "gzip: invalid deflate data (compressed byte 10)"},
		{"stored-nlen", deflate(new(bitWriter).bits(1, 1).bits(0, 2).bits(5, 5).bits(5, 16).bits(5, 16)), "gzip: invalid deflate data (compressed byte 15)"},
		{"stored-short", deflate(new(bitWriter).bits(1, 1).bits(0, 2).bits(5, 5).bits(5, 16).bits(^uint32(5), 16).bits('a', 8)), "unexpected EOF (compressed byte 16)"},
		{"fixed-286", deflate(fixed().fixedLit('a').fixedLit(286)), "gzip: invalid deflate data (compressed byte 12)"},
		{"nothing-back", deflate(fixed().fixedLit(257).code(0, 5)), "gzip: invalid deflate data (compressed byte 11)"},
		{"too-far-back", deflate(fixed().fixedLit('a').fixedLit('b').fixedLit(257).code(2, 5)), "gzip: invalid deflate data (compressed byte 13)"},
		{"dist-30", slices.Concat(deflate(fixed().fixedLit('a').fixedLit(257).code(30, 5)), make([]byte, 8)), "gzip: invalid deflate data (compressed byte 12)"},
		// A bad code in the last bytes of the input reads as truncation.
		{"dist-30-at-end", deflate(fixed().fixedLit('a').fixedLit(257).code(30, 5)), "unexpected EOF (compressed byte 12)"},
		{"hlit-287", deflate(new(bitWriter).bits(1, 1).bits(2, 2).bits(30, 5).bits(0, 5).bits(0, 4)), "gzip: invalid deflate data (compressed byte 12)"},
		{"no-end", deflate(fixed().fixedLit('a').fixedLit('b')), "unexpected EOF (compressed byte 12)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := io.ReadAll(NewReader(bytes.NewReader(tc.in)))
			if err == nil || err.Error() != tc.want {
				t.Errorf("got %v, want %s", err, tc.want)
			}
		})
	}
	// Every truncation fails, as truncated or, inside a dynamic block's
	// code lengths, as invalid.
	blob := gzipStreams(t, 10_000)["members"]
	for n := 0; n < len(blob); n += 1 + n/50 {
		for _, wrap := range []func(io.Reader) io.Reader{plainReader, iotest.OneByteReader} {
			if _, _, err := inflateAll(blob[:n], wrap); !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrDeflate) {
				t.Fatalf("cut at %d of %d: %v", n, len(blob), err)
			}
		}
	}
	// A reader's own error is reported as it is.
	_, _, err := inflateAll(blob, func(r io.Reader) io.Reader { return iotest.TimeoutReader(r) })
	if !errors.Is(err, iotest.ErrTimeout) {
		t.Fatalf("reader error: %v", err)
	}
}

// FuzzInflate checks the inflater against compress/gzip and the reference
// decoder on any input: whatever compress/gzip decodes, the inflater
// decodes the same; whatever the inflater decodes, the reference decoder
// decodes the same with the same boundaries, and so does compress/gzip
// unless the stream uses one of the leniencies the inflater shares with
// zlib. From every boundary, decoding resumes to the same end.
func FuzzInflate(f *testing.F) {
	streams := gzipStreams(f, 300)
	for _, name := range slices.Sorted(maps.Keys(streams)) {
		b := streams[name]
		f.Add(b)
		f.Add(b[:len(b)*2/3])
		f.Add(set(b, len(b)/2, b[len(b)/2]^0x10))
		f.Add(set(b, 12, b[12]^0x04))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, bs, err := inflateAll(in, plainReader)
		if err != nil && !errors.Is(err, ErrDeflate) && !errors.Is(err, ErrHeader) &&
			!errors.Is(err, ErrChecksum) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("unexpected error %v", err)
		}
		std, stdErr := stdGunzip(in)
		if stdErr == nil && (err != nil || !bytes.Equal(out, std)) {
			t.Fatalf("compress/gzip decodes %d bytes; inflater %d, %v", len(std), len(out), err)
		}
		ref, refErr := refInflate(in)
		if err != nil {
			// What came before the error agrees.
			n := min(len(bs), len(ref.bounds))
			if !slices.Equal(bs[:n], ref.bounds[:n]) || !bytes.HasPrefix(ref.out, out) && !bytes.HasPrefix(out, ref.out) {
				t.Fatalf("before the error (%v), inflater and reference differ", err)
			}
			return
		}
		if refErr != nil || !bytes.Equal(out, ref.out) || !slices.Equal(bs, ref.bounds) {
			t.Fatalf("reference: %v; output equal %v; boundaries\n%v\n%v", refErr, bytes.Equal(out, ref.out), bs, ref.bounds)
		}
		if stdErr != nil && !ref.lenient {
			t.Fatalf("compress/gzip: %v", stdErr)
		}
		if one, _, err := inflateAll(in, iotest.OneByteReader); err != nil || !bytes.Equal(one, out) {
			t.Fatalf("one byte at a time: %v", err)
		}
		checkResume(t, in, out, bs, 16)
	})
}

// set returns a copy of b with b[i] = v.
func set(b []byte, i int, v byte) []byte {
	b = bytes.Clone(b)
	b[i] = v
	return b
}

// stdGunzip decodes all members of b with compress/gzip.
func stdGunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}
