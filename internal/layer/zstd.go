package layer

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"

	"github.com/imgfs/imgfs/internal/oci"
)

// BuildZstd indexes a zstd layer in one sequential pass, like BuildGzip.
// zstd can only restart at a frame, so the checkpoints are frame starts at
// least Spacing bytes of output apart, and need no window. Most zstd layers
// are a single frame: their index then has one checkpoint, and every read
// decompresses from the start of the layer. Layers written as many frames
// (e.g. by a chunking encoder) get real random access. A stream that
// breaks gives an error and a broken index, as with BuildGzip.
func BuildZstd(r io.Reader, opts BuildOptions) (*Index, error) {
	idx := &Index{Format: oci.FormatZstd}
	sh := &spanHasher{h: sha256.New()}
	fs := &frameSplitter{br: bufio.NewReaderSize(r, 64<<10), hash: sh}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	zs := &zstdStream{fs: fs, dec: dec, idx: idx, sh: sh, spacing: opts.spacing()}
	err = indexTar(newStreamOffsetReader(zs), idx)
	if err == nil {
		if _, err = io.Copy(io.Discard, zs); err != nil {
			idx.Err = err.Error()
		}
	}
	if err != nil {
		return idx, err
	}
	idx.BlobSize = fs.off
	if n := len(idx.Checkpoints); n > 0 {
		idx.Checkpoints[n-1].SpanDigest = sh.cut()
	}
	return idx, nil
}

func newZstdDecoder(r io.Reader) (io.Reader, error) {
	return zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
}

// zstdStream decodes frame after frame, recording checkpoints at frame
// starts.
type zstdStream struct {
	fs      *frameSplitter
	dec     *zstd.Decoder
	idx     *Index
	sh      *spanHasher
	spacing int64
	out     int64
	started bool
}

func (z *zstdStream) Read(p []byte) (int, error) {
	for {
		if z.started {
			n, err := z.dec.Read(p)
			z.out += int64(n)
			if err != io.EOF {
				if err != nil {
					err = fmt.Errorf("zstd frame ending before compressed byte %d: %w", z.fs.off, err)
				}
				return n, err
			}
			if n > 0 {
				return n, nil
			}
		}
		more, err := z.fs.nextFrame()
		if err != nil {
			return 0, err
		}
		if !more {
			if !z.started {
				return 0, fmt.Errorf("zstd: empty stream: %w", io.ErrUnexpectedEOF)
			}
			return 0, io.EOF
		}
		cps := z.idx.Checkpoints
		if len(cps) == 0 || z.out-cps[len(cps)-1].Out >= z.spacing {
			if len(cps) > 0 {
				z.idx.Checkpoints[len(cps)-1].SpanDigest = z.sh.cut()
			}
			z.idx.Checkpoints = append(z.idx.Checkpoints, Checkpoint{In: z.fs.off, Out: z.out})
		}
		if err := z.dec.Reset(z.fs); err != nil {
			return 0, err
		}
		z.started = true
	}
}

// frameSplitter passes one zstd frame at a time through to the decoder,
// parsing only frame and block headers (RFC 8878) to find where each frame
// ends, and hashes every byte it passes.
type frameSplitter struct {
	br   *bufio.Reader
	hash *spanHasher
	off  int64 // compressed bytes passed so far

	pending   []byte
	remaining int64
	state     int
	checksum  bool
	hdr       [18]byte
}

const (
	fsFrameEnd = iota
	fsBlockHeader
	fsAfterLast
	fsSkippable
)

var errZstdFrame = errors.New("zstd: invalid frame header")

// nextFrame moves to the next frame; more is false at the end of the
// stream.
func (s *frameSplitter) nextFrame() (more bool, err error) {
	if _, err := s.br.Peek(1); err == io.EOF {
		return false, nil
	}
	magic, err := s.take(4)
	if err != nil {
		return false, err
	}
	m := binary.LittleEndian.Uint32(magic)
	switch {
	case m == 0xFD2FB528:
		fhd, err := s.take(1)
		if err != nil {
			return false, err
		}
		d := fhd[0]
		if d&0x08 != 0 {
			return false, errZstdFrame
		}
		n := 0
		single := d&0x20 != 0
		if !single {
			n++ // window descriptor
		}
		n += [4]int{0, 1, 2, 4}[d&3]
		fcs := [4]int{0, 2, 4, 8}[d>>6]
		if fcs == 0 && single {
			fcs = 1
		}
		if _, err := s.take(n + fcs); err != nil {
			return false, err
		}
		s.checksum = d&0x04 != 0
		s.state = fsBlockHeader
	case m&0xFFFFFFF0 == 0x184D2A50:
		size, err := s.take(4)
		if err != nil {
			return false, err
		}
		s.remaining = int64(binary.LittleEndian.Uint32(size))
		s.state = fsSkippable
	default:
		return false, fmt.Errorf("%w at compressed byte %d", errZstdFrame, s.off-4)
	}
	return true, nil
}

// take reads n header bytes, queues them for the decoder and returns them.
func (s *frameSplitter) take(n int) ([]byte, error) {
	b := s.hdr[len(s.pending) : len(s.pending)+n]
	if _, err := io.ReadFull(s.br, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("zstd header at compressed byte %d: %w", s.off+int64(len(s.pending)), err)
	}
	s.pending = s.hdr[:len(s.pending)+n]
	return b, nil
}

func (s *frameSplitter) Read(p []byte) (int, error) {
	for len(s.pending) == 0 && s.remaining == 0 {
		switch s.state {
		case fsFrameEnd:
			return 0, io.EOF
		case fsSkippable:
			s.state = fsFrameEnd
		case fsAfterLast:
			s.state = fsFrameEnd
			if s.checksum {
				s.remaining = 4
			}
		case fsBlockHeader:
			h, err := s.take(3)
			if err != nil {
				return 0, err
			}
			v := uint32(h[0]) | uint32(h[1])<<8 | uint32(h[2])<<16
			size := int64(v >> 3)
			switch v >> 1 & 3 {
			case 1: // RLE
				size = 1
			case 3:
				return 0, fmt.Errorf("%w: reserved block type at compressed byte %d", errZstdFrame, s.off)
			}
			s.remaining = size
			if v&1 != 0 {
				s.state = fsAfterLast
			}
		}
	}
	if len(s.pending) > 0 {
		n := copy(p, s.pending)
		s.pass(p[:n])
		s.pending = s.pending[:copy(s.pending, s.pending[n:])]
		return n, nil
	}
	n, err := s.br.Read(p[:min(int64(len(p)), s.remaining)])
	s.remaining -= int64(n)
	s.pass(p[:n])
	if err == io.EOF && s.remaining > 0 {
		err = io.ErrUnexpectedEOF
	}
	if n > 0 && err == io.EOF {
		err = nil
	}
	return n, err
}

func (s *frameSplitter) pass(b []byte) {
	s.hash.writeAt(b, s.off)
	s.off += int64(len(b))
}
