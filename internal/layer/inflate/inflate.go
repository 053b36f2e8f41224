package inflate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/bits"
)

// Reader decodes a gzip stream (RFC 1952 members of RFC 1951 deflate
// data) and, unlike compress/gzip, reports every deflate block boundary
// with its exact bit position, and can start again at any such boundary
// given the 32 KiB window before it (see Resume). It exists because the
// standard library's decoder exposes neither. The same decoder serves a
// pass that records checkpoints and every read from one, so both take the
// same path.
//
// The stream may hold several members, decoded one after the other; each
// member's CRC-32 and size are checked against its trailer. Errors wrap
// ErrDeflate, ErrHeader, ErrChecksum, io.ErrUnexpectedEOF (the input ended
// inside the stream) or the underlying reader's error, and name the
// compressed byte where decoding stopped. Read returns the output decoded
// before an error, then the error on every call.
type Reader struct {
	r     io.Reader
	in    []byte // input buffer; in[ip:ie] not yet loaded into bits
	ip    int
	ie    int
	inOff int64  // stream offset of in[0]
	bits  uint64 // bit buffer, next bit in the low bit
	nbits uint
	inErr error

	out     []byte // window history followed by new output
	given   int    // out[:given] has been returned by Read
	outBase int64  // stream offset of out[0]

	state     int
	final     bool
	stored    int // bytes left in a stored block
	lit, dist *huffman
	dyn       [2]huffman
	memberOut int64 // output so far in this member (for window size)
	crc       uint32
	crcAt     int  // out[:crcAt] is in crc
	verify    bool // check member CRC and size: only from a member start
	err       error

	// OnBoundary, if set, is called at every deflate block header and, with
	// member true, at every gzip member header (bits is then 0), before
	// decoding it: in and bits are its compressed position (byte, and bit
	// within it, least significant first), out its uncompressed offset.
	// Each is a point a Checkpoint can resume from. During the call,
	// Window returns the window there and the byte at in is still in
	// Input. Set it before the first Read.
	OnBoundary func(in int64, bits uint8, out int64, member bool)
	// OnDrop, if set, is given input bytes b, from compressed offset off,
	// just before they leave the input buffer. Every byte read from the
	// underlying reader is given to OnDrop once, in order, unless it is
	// still in Input: so a caller sees the compressed bytes without
	// reading them twice (to hash them, say). Set it before the first Read.
	OnDrop func(b []byte, off int64)
}

// A Checkpoint is a point in a gzip stream from which a Reader can start
// decoding: a deflate block header, or a member header when Member is set,
// with the output before it that later matches may refer to. OnBoundary
// reports every such point, as zlib's zran example records them.
type Checkpoint struct {
	In     int64  // compressed offset of the byte holding the first bit
	Bits   uint8  // bit within that byte, 0-7, least significant first; 0 for a member
	Out    int64  // uncompressed offset
	Member bool   // at a member header, not a block header
	Window []byte // up to WindowSize bytes of the member's output before Out; none for a member
}

const (
	stMember = iota // at a member header
	stBlock         // at a block header
	stStored
	stHuffman
	stDone
)

// The errors a Reader's errors wrap for a stream that is not valid gzip.
var (
	// ErrDeflate means the deflate data of a member is invalid.
	ErrDeflate = errors.New("gzip: invalid deflate data")
	// ErrHeader means the bytes where a member should start, at the start
	// of the stream or after a member, are not a gzip header for deflate
	// data.
	ErrHeader = errors.New("gzip: invalid header")
	// ErrChecksum means a member's output does not match the CRC-32 or
	// the size in its trailer.
	ErrChecksum = errors.New("gzip: checksum or size mismatch")
)

// WindowSize is how far back a deflate match may reach: the most output
// before a block boundary that a Checkpoint there needs.
const WindowSize = 32 << 10

const (
	inBufSize  = 64 << 10
	outChunk   = 256 << 10
	outLimit   = WindowSize + outChunk // decoding stops for a Read once out is this long
	keepBits   = 8                     // bytes kept before ip so a boundary's byte is still buffered
	maxMatch   = 258
	fastLitLen = 10
	// outSlack is the room out has past outLimit, for a match that starts
	// just below it: decodeFast writes at most 264 bytes from a match's
	// start (its length rounded up to whole words, at least 16).
	outSlack = maxMatch + 8
)

// NewReader returns a Reader that decodes the gzip stream r yields, from
// its start.
func NewReader(r io.Reader) *Reader {
	f := &Reader{r: r, in: make([]byte, inBufSize), out: make([]byte, 0, outLimit+outSlack), verify: true}
	return f
}

// Resume returns a Reader that decodes from checkpoint c, given r that
// yields the stream's compressed bytes from c.In on. Offsets it reports,
// in errors and to OnBoundary, are the whole stream's. It does not check
// the CRC-32 of the member it starts in, whose start it has not seen:
// verify that output otherwise. Later members are checked. It fails only
// if r ends, or fails, before the bit the checkpoint is at.
func Resume(r io.Reader, c Checkpoint) (*Reader, error) {
	f := NewReader(r)
	f.inOff = c.In
	f.outBase = c.Out - int64(len(c.Window))
	f.out = append(f.out[:0], c.Window...)
	f.given = len(f.out)
	f.crcAt = len(f.out)
	f.memberOut = int64(len(c.Window))
	f.verify = false
	if c.Member {
		f.state = stMember
		return f, nil
	}
	f.state = stBlock
	if c.Bits > 0 {
		f.fill()
		if f.nbits < uint(c.Bits) {
			return nil, f.truncated()
		}
		f.consume(uint(c.Bits))
	}
	return f, nil
}

// Window returns a copy of the output that a match at the current position
// may refer back to: up to WindowSize bytes, from the current member only.
// Called from OnBoundary at a block boundary, it is the Checkpoint's Window
// there.
func (f *Reader) Window() []byte {
	w := int(min(int64(WindowSize), f.memberOut, int64(len(f.out))))
	return append([]byte(nil), f.out[len(f.out)-w:]...)
}

// Input returns the compressed bytes in the Reader's input buffer, b, and
// the compressed offset of b[0]. They run on past where decoding stands,
// as the Reader reads ahead; with OnDrop they account for every byte read
// from the underlying reader. b is valid until the next Read.
func (f *Reader) Input() (b []byte, off int64) {
	return f.in[:f.ie], f.inOff
}

// fill loads bytes into the bit buffer until it holds at least 56 bits or
// the input ends.
func (f *Reader) fill() {
	for f.nbits <= 56 {
		if f.ie-f.ip >= 8 {
			v := binary.LittleEndian.Uint64(f.in[f.ip:])
			n := (63 - f.nbits) / 8
			f.bits |= v << f.nbits
			if n < 8 {
				f.bits &= 1<<(f.nbits+n*8) - 1
			}
			f.ip += int(n)
			f.nbits += n * 8
			return
		}
		if f.ip < f.ie {
			f.bits |= uint64(f.in[f.ip]) << f.nbits
			f.ip++
			f.nbits += 8
			continue
		}
		if !f.refill() {
			return
		}
	}
}

// refill reads more input, keeping the last few consumed bytes.
func (f *Reader) refill() bool {
	if f.inErr != nil {
		return false
	}
	keep := max(f.ip-keepBits, 0)
	if keep > 0 {
		if f.OnDrop != nil {
			f.OnDrop(f.in[:keep], f.inOff)
		}
		n := copy(f.in, f.in[keep:f.ie])
		f.inOff += int64(keep)
		f.ip -= keep
		f.ie = n
	}
	n, err := f.r.Read(f.in[f.ie:])
	f.ie += n
	if err != nil {
		f.inErr = err
	}
	return n > 0 || (err == nil)
}

func (f *Reader) consume(n uint) {
	f.bits >>= n
	f.nbits -= n
}

// bitPos is the stream offset, in bits, of the next unread bit.
func (f *Reader) bitPos() int64 {
	return (f.inOff+int64(f.ip))*8 - int64(f.nbits)
}

func (f *Reader) getBits(n uint) (uint32, bool) {
	if f.nbits < n {
		f.fill()
		if f.nbits < n {
			return 0, false
		}
	}
	v := uint32(f.bits & (1<<n - 1))
	f.consume(n)
	return v, true
}

func (f *Reader) fail(err error) error {
	if f.err == nil {
		f.err = fmt.Errorf("%w (compressed byte %d)", err, f.bitPos()/8)
	}
	return f.err
}

func (f *Reader) truncated() error {
	if f.inErr != nil && f.inErr != io.EOF {
		return f.fail(f.inErr)
	}
	return f.fail(io.ErrUnexpectedEOF)
}

// Read implements io.Reader: it returns the decoded bytes, then io.EOF
// where the input ends after a whole member.
func (f *Reader) Read(p []byte) (int, error) {
	for f.given == len(f.out) {
		if f.err != nil {
			return 0, f.err
		}
		if f.state == stDone {
			return 0, io.EOF
		}
		f.slide()
		f.step()
	}
	n := copy(p, f.out[f.given:])
	f.given += n
	return n, nil
}

// slide keeps only the last window of output once it has all been read.
func (f *Reader) slide() {
	if len(f.out) <= WindowSize+outChunk/2 {
		return
	}
	f.sumCRC()
	drop := len(f.out) - WindowSize
	copy(f.out, f.out[drop:])
	f.out = f.out[:WindowSize]
	f.outBase += int64(drop)
	f.given -= drop
	f.crcAt -= drop
}

func (f *Reader) sumCRC() {
	if f.verify {
		f.crc = crc32.Update(f.crc, crc32.IEEETable, f.out[f.crcAt:])
	}
	f.crcAt = len(f.out)
}

// step decodes until some output is ready, a member ends, or an error.
func (f *Reader) step() {
	for len(f.out) < outLimit && f.err == nil {
		switch f.state {
		case stMember:
			if !f.member() {
				return
			}
		case stBlock:
			if f.final {
				f.trailer()
				continue
			}
			if f.OnBoundary != nil {
				bp := f.bitPos()
				f.OnBoundary(bp/8, uint8(bp%8), f.outBase+int64(len(f.out)), false)
			}
			f.blockHeader()
		case stStored:
			f.copyStored()
		case stHuffman:
			f.decodeHuffman()
		case stDone:
			return
		}
	}
}

// member reads a gzip member header, or finds the end of the stream.
func (f *Reader) member() bool {
	f.alignByte()
	f.fill()
	if f.nbits == 0 {
		if f.inErr != nil && f.inErr != io.EOF {
			f.fail(f.inErr)
			return false
		}
		if f.bitPos() == 0 {
			f.fail(io.ErrUnexpectedEOF)
			return false
		}
		f.state = stDone
		return false
	}
	if f.OnBoundary != nil {
		bp := f.bitPos()
		f.OnBoundary(bp/8, 0, f.outBase+int64(len(f.out)), true)
	}
	var h [10]byte
	if !f.bytes(h[:]) {
		f.truncated()
		return false
	}
	if h[0] != 0x1f || h[1] != 0x8b || h[2] != 8 {
		f.fail(ErrHeader)
		return false
	}
	flg := h[3]
	if flg&4 != 0 { // FEXTRA
		var l [2]byte
		if !f.bytes(l[:]) || !f.skip(int(binary.LittleEndian.Uint16(l[:]))) {
			f.truncated()
			return false
		}
	}
	for _, bit := range []byte{8, 16} { // FNAME, FCOMMENT
		if flg&bit != 0 {
			for {
				v, ok := f.getBits(8)
				if !ok {
					f.truncated()
					return false
				}
				if v == 0 {
					break
				}
			}
		}
	}
	if flg&2 != 0 && !f.skip(2) { // FHCRC
		f.truncated()
		return false
	}
	f.sumCRC()
	f.crc, f.memberOut, f.final = 0, 0, false
	f.state = stBlock
	return true
}

func (f *Reader) alignByte() { f.consume(f.nbits % 8) }

func (f *Reader) bytes(b []byte) bool {
	for i := range b {
		v, ok := f.getBits(8)
		if !ok {
			return false
		}
		b[i] = byte(v)
	}
	return true
}

func (f *Reader) skip(n int) bool {
	for range n {
		if _, ok := f.getBits(8); !ok {
			return false
		}
	}
	return true
}

func (f *Reader) trailer() {
	f.alignByte()
	var t [8]byte
	if !f.bytes(t[:]) {
		f.truncated()
		return
	}
	if f.verify {
		f.sumCRC()
		if binary.LittleEndian.Uint32(t[:4]) != f.crc || binary.LittleEndian.Uint32(t[4:]) != uint32(f.memberOut) {
			f.fail(ErrChecksum)
			return
		}
	}
	f.crcAt = len(f.out)
	f.verify = true
	f.state = stMember
}

func (f *Reader) blockHeader() {
	h, ok := f.getBits(3)
	if !ok {
		f.truncated()
		return
	}
	f.final = h&1 != 0
	switch h >> 1 {
	case 0:
		f.alignByte()
		v, ok := f.getBits(32)
		if !ok {
			f.truncated()
			return
		}
		if uint16(v) != ^uint16(v>>16) {
			f.fail(ErrDeflate)
			return
		}
		f.stored = int(uint16(v))
		f.state = stStored
	case 1:
		f.lit, f.dist = &fixedLit, &fixedDist
		f.state = stHuffman
	case 2:
		if err := f.readDynamic(); err != nil {
			f.fail(err)
			return
		}
		f.lit, f.dist = &f.dyn[0], &f.dyn[1]
		f.state = stHuffman
	default:
		f.fail(ErrDeflate)
	}
}

func (f *Reader) copyStored() {
	for f.stored > 0 && len(f.out) < outLimit {
		// Drain whole bytes still in the bit buffer first.
		if f.nbits >= 8 {
			v, _ := f.getBits(8)
			f.out = append(f.out, byte(v))
			f.stored--
			f.memberOut++
			continue
		}
		if f.ip == f.ie && !f.refill() {
			f.truncated()
			return
		}
		n := min(f.stored, f.ie-f.ip, outLimit-len(f.out))
		f.out = append(f.out, f.in[f.ip:f.ip+n]...)
		f.ip += n
		f.stored -= n
		f.memberOut += int64(n)
	}
	if f.stored == 0 {
		f.state = stBlock
	}
}

var codeOrder = [19]int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

func (f *Reader) readDynamic() error {
	h, ok := f.getBits(14)
	if !ok {
		return f.truncated()
	}
	nlit, ndist, nclen := int(h&31)+257, int(h>>5&31)+1, int(h>>10)+4
	if nlit > 286 || ndist > 30 {
		return ErrDeflate
	}
	var lens [320]uint8
	for i := range nclen {
		v, ok := f.getBits(3)
		if !ok {
			return f.truncated()
		}
		lens[codeOrder[i]] = uint8(v)
	}
	var clen huffman
	if !clen.build(lens[:19], &symEntries) {
		return ErrDeflate
	}
	clear(lens[:19])
	for i := 0; i < nlit+ndist; {
		sym, ok := f.decode(&clen)
		if !ok {
			return f.fail(ErrDeflate)
		}
		switch {
		case sym < 16:
			lens[i] = uint8(sym)
			i++
		default:
			var rep int
			var val uint8
			switch sym {
			case 16:
				if i == 0 {
					return ErrDeflate
				}
				v, ok := f.getBits(2)
				if !ok {
					return f.truncated()
				}
				rep, val = 3+int(v), lens[i-1]
			case 17:
				v, ok := f.getBits(3)
				if !ok {
					return f.truncated()
				}
				rep = 3 + int(v)
			default:
				v, ok := f.getBits(7)
				if !ok {
					return f.truncated()
				}
				rep = 11 + int(v)
			}
			if i+rep > nlit+ndist {
				return ErrDeflate
			}
			for range rep {
				lens[i] = val
				i++
			}
		}
	}
	if lens[256] == 0 {
		return ErrDeflate
	}
	if !f.dyn[0].build(lens[:nlit], &litLenEntries) || !f.dyn[1].build(lens[nlit:nlit+ndist], &distEntries) {
		return ErrDeflate
	}
	return nil
}

// entry reads one code and returns its table entry; ok is false on a bad
// code or short input.
func (f *Reader) entry(h *huffman) (uint32, bool) {
	if f.nbits < 15 {
		f.fill()
	}
	e := h.primary[f.bits&(1<<fastLitLen-1)]
	if e&entLink != 0 {
		e = h.sub[int(e>>16)+int(f.bits>>fastLitLen&(1<<(15-fastLitLen)-1))]
	}
	n := uint(e >> 8 & 15)
	if n == 0 || n > f.nbits {
		return 0, false
	}
	f.consume(n)
	return e, true
}

// decode reads one symbol of a table built with symEntries.
func (f *Reader) decode(h *huffman) (int, bool) {
	e, ok := f.entry(h)
	return int(e >> 16), ok
}

var (
	lenBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lenExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	dBase    = [30]uint32{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	dExtra   = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
)

// decodeHuffman decodes a Huffman block until it ends, out reaches
// outLimit, or an error. The fast loop takes every symbol it can, and
// decodeSymbol each one it leaves: near the end of the buffered input, or
// one that is bad.
func (f *Reader) decodeHuffman() {
	for len(f.out) < outLimit && f.state == stHuffman && f.err == nil {
		f.decodeFast()
		if len(f.out) < outLimit && f.state == stHuffman {
			f.decodeSymbol()
		}
	}
}

// decodeFast decodes symbols while at least 8 input bytes are buffered
// past ip. It keeps the bit buffer, the positions and the output in
// locals, and decodes a literal, or a length or distance with its extra
// bits, with one table lookup (see huffman).
//
// It refills the bit buffer exactly when and as fill would (below 48
// bits, one 8-byte load), so the decoder stands at the same place at
// every symbol as the slow path would, and so reports the same errors
// (see badOrShort) and reads its input at the same times. 48 bits hold
// a whole length/distance pair (15+5+15+13). A bad code, a bad symbol or
// a distance too far back it leaves undecoded, at the symbol's start, for
// decodeSymbol to report.
//
// Inside the loop, bits above nbits in the buffer are the next input bits,
// not zero: the load is not masked, as loading them again ORs in the same
// bits. They are cleared on the way out, as the rest of the decoder (a
// stored block takes bytes from in directly) needs zeros there.
func (f *Reader) decodeFast() {
	// Arrays rather than slices, so that their lengths are constants:
	// fewer live registers and bounds checks in the loop.
	in := (*[inBufSize]byte)(f.in)
	lastLoad := f.ie - 8 // the last ip a refill can load 8 bytes from
	ip, bits, nbits := f.ip, f.bits, f.nbits
	buf := (*[outLimit + outSlack]byte)(f.out[:cap(f.out)])
	op := len(f.out)
	// A match may reach back to the member's start but not before it.
	lowest := 0
	if f.memberOut < int64(op) {
		lowest = op - int(f.memberOut)
	}
	lit, dist := f.lit, f.dist
	for op < outLimit {
		if nbits < 48 {
			if ip > lastLoad {
				break
			}
			bits |= binary.LittleEndian.Uint64(in[ip:]) << (nbits & 63)
			n := (63 - nbits) >> 3 // whole bytes that fit
			ip += int(n)
			nbits += n << 3
		}
		e := lit.primary[bits&(1<<fastLitLen-1)]
		if e&entLink != 0 {
			e = lit.sub[int(e>>16)+int(bits>>fastLitLen&(1<<(15-fastLitLen)-1))]
		}
		if e&entLit != 0 {
			bits >>= e & 31
			nbits -= uint(e & 31)
			buf[op] = byte(e >> 16)
			op++
			continue
		}
		if e&entLen == 0 {
			if e&entEnd != 0 {
				bits >>= e & 31
				nbits -= uint(e & 31)
				f.state = stBlock
			}
			break
		}
		symBits, symNbits := bits, nbits
		// Length and distance: the base, plus the extra bits that follow
		// the code.
		n := uint(e & 31)
		length := int(e>>16) + int(bits&(1<<n-1)>>(e>>8&15))
		bits >>= n
		nbits -= n
		e = dist.primary[bits&(1<<fastLitLen-1)]
		if e&entLink != 0 {
			e = dist.sub[int(e>>16)+int(bits>>fastLitLen&(1<<(15-fastLitLen)-1))]
		}
		if e&entLen == 0 {
			bits, nbits = symBits, symNbits
			break
		}
		n = uint(e & 31)
		start := op - int(e>>16) - int(bits&(1<<n-1)>>(e>>8&15))
		if start < lowest {
			bits, nbits = symBits, symNbits
			break
		}
		bits >>= n
		nbits -= n
		// Copy the match as if byte by byte, 8 bytes at a time, which may
		// write up to 15 bytes past its end (see outSlack). The copy is
		// written out here, not called: a call in the loop would make
		// the compiler keep the loop's variables in memory.
		if d := op - start; d >= 8 {
			// Each 8 bytes read lie wholly before the 8 written, so
			// words are right even when source and destination overlap.
			// Most matches are short: two words, then the loop is done.
			binary.LittleEndian.PutUint64(buf[op:], binary.LittleEndian.Uint64(buf[start:]))
			binary.LittleEndian.PutUint64(buf[op+8:], binary.LittleEndian.Uint64(buf[start+8:]))
			for i := 16; i < length; i += 8 {
				binary.LittleEndian.PutUint64(buf[op+i:], binary.LittleEndian.Uint64(buf[start+i:]))
			}
		} else {
			// The match repeats its first d bytes. Write them byte by
			// byte up to a whole number of repeats of 8 bytes or more,
			// then copy words from that far back.
			span := min(int(repeatSpan[d]), length)
			for i := range span {
				buf[op+i] = buf[start+i]
			}
			for i := span; i < length; i += 8 {
				binary.LittleEndian.PutUint64(buf[op+i:], binary.LittleEndian.Uint64(buf[op+i-span:]))
			}
		}
		op += length
	}
	f.ip, f.bits, f.nbits = ip, bits&(1<<nbits-1), nbits
	f.memberOut += int64(op - len(f.out))
	f.out = f.out[:op]
}

// entryValue returns the length or distance a table entry decodes to: its
// base plus its extra bits, read from the input. Out of input, it reports
// the stream truncated and false.
func (f *Reader) entryValue(e uint32) (int, bool) {
	v := int(e >> 16)
	if x := uint(e&31) - uint(e>>8&15); x > 0 {
		extra, ok := f.getBits(x)
		if !ok {
			f.truncated()
			return 0, false
		}
		v += int(extra)
	}
	return v, true
}

// repeatSpan is, for a match distance d under 8, the least multiple of d
// of 8 or more.
var repeatSpan = [8]uint8{0, 8, 8, 9, 8, 10, 12, 14}

// decodeSymbol decodes one symbol of a Huffman block, checking it all.
func (f *Reader) decodeSymbol() {
	if f.nbits < 48 {
		f.fill()
	}
	e, ok := f.entry(f.lit)
	if !ok {
		f.badOrShort()
		return
	}
	switch {
	case e&entLit != 0:
		f.out = append(f.out, byte(e>>16))
		f.memberOut++
		return
	case e&entEnd != 0:
		f.state = stBlock
		return
	case e&entLen == 0:
		f.fail(ErrDeflate) // literal/length symbol 286 or 287
		return
	}
	length, ok := f.entryValue(e)
	if !ok {
		return
	}
	e, ok = f.entry(f.dist)
	if !ok {
		f.badOrShort()
		return
	}
	d, ok := f.entryValue(e)
	if !ok {
		return
	}
	if int64(d) > f.memberOut || d > len(f.out) {
		f.fail(ErrDeflate)
		return
	}
	for range length {
		f.out = append(f.out, f.out[len(f.out)-d])
	}
	f.memberOut += int64(length)
}

// badOrShort tells a corrupt code from input that ended mid-block.
func (f *Reader) badOrShort() {
	if f.inErr != nil && f.ip == f.ie {
		f.truncated()
		return
	}
	f.fail(ErrDeflate)
}

// huffman is a canonical Huffman decoding table: a primary table indexed
// by the next 10 bits, linking to 32-entry subtables for longer codes.
// Following libdeflate, an entry holds what decoding needs next, so that
// the fast loop decodes a literal, or a length or distance with its extra
// bits, with one lookup:
//
//	bits 0-4    bits to consume: the code's length plus its extra bits
//	bits 8-11   the code's length (0: no code has these bits)
//	bits 12-15  kind: entLit, entLen (length or distance), entEnd or
//	            entLink; none for the symbols of a code-length code, and
//	            for literal/length symbols 286 and 287, which are invalid
//	bits 16-31  the literal, the length or distance base, the symbol (of
//	            a code-length code), or the subtable's offset in sub
type huffman struct {
	primary [1 << fastLitLen]uint32
	sub     []uint32
}

const (
	entLit  = 1 << 12
	entLen  = 1 << 13
	entEnd  = 1 << 14
	entLink = 1 << 15
)

// litLenEntries, distEntries and symEntries give each symbol's entry
// without its code length: kind, value and extra-bit count.
var litLenEntries, distEntries, symEntries [288]uint32

func init() {
	for sym := range litLenEntries {
		switch {
		case sym < 256:
			litLenEntries[sym] = entLit | uint32(sym)<<16
		case sym == 256:
			litLenEntries[sym] = entEnd
		case sym < 286:
			litLenEntries[sym] = entLen | uint32(lenBase[sym-257])<<16 | uint32(lenExtra[sym-257])
		}
		symEntries[sym] = uint32(sym) << 16
	}
	for sym := range dBase {
		distEntries[sym] = entLen | dBase[sym]<<16 | uint32(dExtra[sym])
	}
}

// build makes the table for the code lengths lens of symbols whose entries
// (see litLenEntries) are ents; it fails on an over-subscribed code. An
// incomplete code is allowed, as zlib allows it: its missing codes decode
// as errors.
func (h *huffman) build(lens []uint8, ents *[288]uint32) bool {
	var count [16]int
	for _, l := range lens {
		count[l]++
	}
	count[0] = 0
	left := 1
	for l := 1; l < 16; l++ {
		left = left<<1 - count[l]
		if left < 0 {
			return false // over-subscribed
		}
	}
	var next [16]int
	code := 0
	for l := 1; l < 16; l++ {
		code = (code + count[l-1]) << 1
		next[l] = code
	}
	clear(h.primary[:])
	h.sub = h.sub[:0]
	for sym, l := range lens {
		if l == 0 {
			continue
		}
		c := next[l]
		next[l]++
		rev := int(bits.Reverse16(uint16(c)) >> (16 - l))
		e := ents[sym] + uint32(l)<<8 + uint32(l)
		if l <= fastLitLen {
			for i := rev; i < len(h.primary); i += 1 << l {
				h.primary[i] = e
			}
			continue
		}
		p := rev & (1<<fastLitLen - 1)
		if h.primary[p]&entLink == 0 {
			h.primary[p] = uint32(len(h.sub))<<16 | entLink
			h.sub = append(h.sub, make([]uint32, 1<<(15-fastLitLen))...)
		}
		base := int(h.primary[p] >> 16)
		for i := rev >> fastLitLen; i < 1<<(15-fastLitLen); i += 1 << (int(l) - fastLitLen) {
			h.sub[base+i] = e
		}
	}
	return true
}

var fixedLit, fixedDist huffman

func init() {
	var l [288]uint8
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
	fixedLit.build(l[:], &litLenEntries)
	var d [30]uint8
	for i := range d {
		d[i] = 5
	}
	fixedDist.build(d[:], &distEntries)
}
