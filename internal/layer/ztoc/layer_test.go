package ztoc

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/imgfs/imgfs/internal/layer"
)

// gzLayer is a real gzip layer and a zTOC of it with true checkpoints.
type gzLayer struct {
	tar, blob []byte
	spec      zspec
	toc       *TOC
}

// text is n bytes of words drawn at random: compressible enough that
// deflate emits many blocks, not so much that a span holds the file.
func text(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	words := []string{"layer", "span", "zTOC", "gzip", "window", "checkpoint", "deflate", "tar", "\n"}
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
		b.WriteByte(byte('a' + r.IntN(26)))
		b.WriteByte(' ')
	}
	return b.Bytes()[:n]
}

// layerFiles are the files of the test layer: small ones, an empty one,
// and a big one that crosses several spans.
var layerFiles = []struct {
	name string
	body []byte
}{
	{"a", []byte("hello\n")},
	{"big", text(1, 400_000)},
	{"b", text(2, 3000)},
	{"empty", nil},
	{"c", text(3, 70_000)},
	{"d", []byte("tail\n")},
}

// buildLayer makes the test layer and its zTOC: layer.BuildGzip finds the
// deflate block boundaries every spacing bytes of output with their
// windows, and they are written as SOCI's zinfo writes them, with span
// digests computed over SOCI's span ranges, in SOCI's own terms.
func buildLayer(t testing.TB, spacing int64) *gzLayer {
	t.Helper()
	return buildLayerFlushed(t, spacing, 0)
}

// emptyStoredBlock is the 5 bytes an empty, non-final stored block takes
// when it starts on a byte, as a flush writes it: 3 header bits padded to
// a byte, then LEN 0 and NLEN 0xffff.
const emptyStoredBlock = 5

// buildLayerFlushed is buildLayer for a gzip stream whose writer was
// flushed the given times before its first byte, so that it starts with
// as many empty stored blocks. SOCI's zran puts a checkpoint at every
// block boundary while its output is empty, so the zTOC has flushes+1
// checkpoints at output 0, as SOCI's builder writes it.
func buildLayerFlushed(t testing.TB, spacing int64, flushes int) *gzLayer {
	t.Helper()
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for _, f := range layerFiles {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f.body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var gb bytes.Buffer
	zw := gzip.NewWriter(&gb)
	for range flushes {
		if err := zw.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := zw.Write(tb.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	blob := gb.Bytes()
	idx, err := layer.BuildGzip(bytes.NewReader(blob), layer.BuildOptions{Spacing: spacing})
	if err != nil {
		t.Fatal(err)
	}
	// compress/gzip writes a 10-byte header, so the first block starts
	// at byte 10, output 0: SOCI's first checkpoint, where layer's is
	// the member header at 0. Each empty block flushed adds one more at
	// output 0, with a window of zeros.
	var cps []zcp
	var windows [][]byte
	for i := range flushes + 1 {
		cps = append(cps, zcp{in: 10 + int64(i)*emptyStoredBlock})
		windows = append(windows, make([]byte, WindowSize))
	}
	for _, c := range idx.Checkpoints[1:] {
		if c.Member {
			t.Fatal("one member, yet a member checkpoint")
		}
		if c.Out == 0 {
			t.Fatalf("layer put a checkpoint at output 0, compressed %d", c.In)
		}
		z := zcp{in: c.In, out: c.Out}
		if c.Bits != 0 {
			// SOCI's in is the first whole byte of the block, and its
			// bits count those taken from the byte before.
			z = zcp{in: c.In + 1, out: c.Out, bits: 8 - c.Bits}
		}
		cps = append(cps, z)
		w := make([]byte, WindowSize)
		copy(w[WindowSize-len(c.Window):], c.Window)
		windows = append(windows, w)
	}
	if len(cps) < 4 {
		t.Fatalf("only %d checkpoints; the test wants several spans", len(cps))
	}
	var digests []string
	for i, c := range cps {
		start, end := c.in, int64(len(blob))
		if c.bits != 0 {
			start--
		}
		if i+1 < len(cps) {
			end = cps[i+1].in
		}
		digests = append(digests, fmt.Sprintf("sha256:%x", sha256.Sum256(blob[start:end])))
	}
	files, size := tocOf(t, tb.Bytes())
	spec := zspec{
		version: "0.9", buildTool: "test", compressed: int64(len(blob)), uncompressed: size,
		files: files, maxSpanID: int32(len(cps) - 1), digests: digests,
		zinfo: zinfoWindows(spacing, cps, windows),
	}
	toc, err := Parse(spec.encode(), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return &gzLayer{tar: tb.Bytes(), blob: blob, spec: spec, toc: toc}
}

// zinfoWindows packs checkpoints with the given windows as SOCI's
// zinfo_to_blob does (version 2).
func zinfoWindows(spanSize int64, cps []zcp, windows [][]byte) []byte {
	blob := binary.LittleEndian.AppendUint32(nil, uint32(len(cps)))
	blob = binary.LittleEndian.AppendUint64(blob, uint64(spanSize))
	for i, cp := range cps {
		blob = binary.LittleEndian.AppendUint64(blob, uint64(cp.in))
		blob = binary.LittleEndian.AppendUint64(blob, uint64(cp.out))
		blob = append(blob, cp.bits)
		blob = append(blob, windows[i]...)
	}
	return blob
}

// recorder serves b and records each range read.
type recorder struct {
	mu    sync.Mutex
	b     []byte
	reads [][2]int64 // offset, length
}

func (s *recorder) ReadAt(_ context.Context, p []byte, off int64) (int, error) {
	s.mu.Lock()
	s.reads = append(s.reads, [2]int64{off, int64(len(p))})
	s.mu.Unlock()
	if off < 0 || off >= int64(len(s.b)) {
		return 0, io.EOF
	}
	n := copy(p, s.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (s *recorder) reset() [][2]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.reads
	s.reads = nil
	return r
}

func entryNamed(t testing.TB, l layer.Layer, name string) int {
	t.Helper()
	for i, e := range l.Index().Entries {
		if e.Name == name {
			return i
		}
	}
	t.Fatalf("no entry %q", name)
	return -1
}

func newLayer(t testing.TB, g *gzLayer, src *recorder) layer.Layer {
	t.Helper()
	l, err := NewLayer(g.toc, int64(len(g.blob)), src)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestLayerReadsBack reads every file whole, in small reads, across span
// boundaries and at its end, and gets the tar's bytes. That the windows
// and bits written in SOCI's terms resume inflating at all proves
// Parse's conversion to inflate's terms; that several checkpoints have
// bits (checked) makes it more than the byte-aligned case.
func TestLayerReadsBack(t *testing.T) {
	g := buildLayer(t, 32<<10)
	var withBits int
	for _, c := range g.toc.Checkpoints {
		if c.Bits != 0 {
			withBits++
		}
	}
	if withBits == 0 {
		t.Fatal("no checkpoint has bits; the bit conversion goes untested")
	}
	l := newLayer(t, g, &recorder{b: g.blob})
	idx := l.Index()
	if idx.BlobSize != int64(len(g.blob)) || idx.TarSize != g.spec.uncompressed || len(idx.Checkpoints) != 0 {
		t.Errorf("index: blob %d tar %d checkpoints %d", idx.BlobSize, idx.TarSize, len(idx.Checkpoints))
	}
	ctx := context.Background()
	for _, f := range layerFiles {
		i := entryNamed(t, l, f.name)
		size := int64(len(f.body))
		// Whole, with room to spare: n is the size and io.EOF.
		p := make([]byte, size+10)
		n, err := l.ReadFile(ctx, i, p, 0)
		if n != len(f.body) || err != io.EOF || !bytes.Equal(p[:n], f.body) {
			t.Errorf("%s whole: n %d err %v, equal %v", f.name, n, err, bytes.Equal(p[:n], f.body))
		}
		// At and past the end.
		if n, err := l.ReadFile(ctx, i, make([]byte, 4), size); n != 0 || err != io.EOF {
			t.Errorf("%s at EOF: n %d err %v", f.name, n, err)
		}
		// Small reads at every span boundary inside the file, and a
		// few elsewhere.
		e := idx.Entries[i]
		offs := []int64{0, size / 2, size - 1}
		for _, c := range g.toc.Checkpoints {
			if o := c.Out - e.DataOffset; o > 0 && o < size {
				offs = append(offs, o-7, o-3, o, o+1)
			}
		}
		for _, o := range offs {
			if o < 0 || o >= size {
				continue
			}
			q := make([]byte, 7)
			n, err := l.ReadFile(ctx, i, q, o)
			wantN := min(int64(7), size-o)
			if int64(n) != wantN || !bytes.Equal(q[:n], f.body[o:o+wantN]) {
				t.Errorf("%s at %d: n %d err %v", f.name, o, n, err)
			}
			if (wantN < 7) != (err == io.EOF) || (err != nil && err != io.EOF) {
				t.Errorf("%s at %d: err %v", f.name, o, err)
			}
		}
	}
	// The big file crosses several spans in one read.
	i := entryNamed(t, l, "big")
	e := idx.Entries[i]
	var crossed int
	for _, c := range g.toc.Checkpoints {
		if c.Out > e.DataOffset && c.Out < e.DataOffset+e.Size {
			crossed++
		}
	}
	if crossed < 3 {
		t.Errorf("big crosses %d span boundaries, want at least 3", crossed)
	}
}

// TestLayerFetchesOneSpan reads a small file that lies inside one span
// and checks that just that span's bytes were fetched, in one range.
func TestLayerFetchesOneSpan(t *testing.T) {
	g := buildLayer(t, 32<<10)
	src := &recorder{b: g.blob}
	l := newLayer(t, g, src)
	i := entryNamed(t, l, "b")
	e := l.Index().Entries[i]
	k := -1
	for j, c := range g.toc.Checkpoints {
		if c.Out <= e.DataOffset {
			k = j
		}
	}
	if k+1 < len(g.toc.Checkpoints) && g.toc.Checkpoints[k+1].Out <= e.DataOffset+e.Size+1024 {
		t.Fatalf("b is not well inside span %d; change the layer", k)
	}
	p := make([]byte, e.Size)
	if n, err := l.ReadFile(context.Background(), i, p, 0); n != len(p) || err != nil {
		t.Fatalf("n %d err %v", n, err)
	}
	start, end := g.toc.SpanRange(k)
	if got, want := src.reset(), [][2]int64{{start, end - start}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("fetched %v, want span %d only: %v", got, k, want)
	}
}

// TestLayerEmptyStart reads through a zTOC of a stream that starts with
// two empty blocks, hand-built as SOCI's builder writes one: three
// checkpoints at output 0. Parse keeps them all, with their spans, and
// every read resumes at the last of them, as SOCI's extract does: the
// spans of the empty blocks are never fetched.
func TestLayerEmptyStart(t *testing.T) {
	g := buildLayerFlushed(t, 32<<10, 2)
	cps := g.toc.Checkpoints
	if len(cps) < 5 {
		t.Fatalf("%d checkpoints", len(cps))
	}
	for i, in := range []int64{10, 15, 20} {
		if cps[i].Out != 0 || cps[i].In != in || cps[i].Bits != 0 {
			t.Errorf("checkpoint %d at (in %d, out %d, bits %d); want in %d, out 0", i, cps[i].In, cps[i].Out, cps[i].Bits, in)
		}
		if start, end := g.toc.SpanRange(i); i < 2 && (start != in || end != in+emptyStoredBlock) {
			t.Errorf("span %d of an empty block: [%d,%d), want [%d,%d)", i, start, end, in, in+emptyStoredBlock)
		}
	}
	if cps[3].Out == 0 {
		t.Errorf("checkpoint 3 at output 0")
	}
	src := &recorder{b: g.blob}
	l := newLayer(t, g, src)
	ctx := context.Background()
	for _, f := range layerFiles {
		i := entryNamed(t, l, f.name)
		p := make([]byte, len(f.body)+1)
		n, err := l.ReadFile(ctx, i, p, 0)
		if n != len(f.body) || err != io.EOF || !bytes.Equal(p[:n], f.body) {
			t.Errorf("%s: n %d err %v, equal %v", f.name, n, err, bytes.Equal(p[:n], f.body))
		}
	}
	reads := src.reset()
	if len(reads) == 0 || reads[0][0] != 20 {
		t.Errorf("fetched %v; want the first read at span 2, byte 20", reads)
	}
	for _, r := range reads {
		if r[0] < 20 {
			t.Errorf("fetched %v, a span of the empty blocks", r)
		}
	}
}

// TestLayerCorrupt changes one byte of a span in the blob, then one span
// digest in the zTOC: reads from that span fail with layer.ErrCorrupt and
// no bytes, and reads from other spans still work.
func TestLayerCorrupt(t *testing.T) {
	g := buildLayer(t, 32<<10)
	ctx := context.Background()
	check := func(t *testing.T, l layer.Layer, src *recorder) {
		t.Helper()
		i := entryNamed(t, l, "b")
		p := make([]byte, 10)
		n, err := l.ReadFile(ctx, i, p, 0)
		if n != 0 || !errors.Is(err, layer.ErrCorrupt) {
			t.Errorf("read of the bad span: n %d err %v, want ErrCorrupt and no bytes", n, err)
		}
		// "a" lies in span 0, which is sound.
		if n, err := l.ReadFile(ctx, entryNamed(t, l, "a"), p, 0); n != 6 || err != io.EOF {
			t.Errorf("read of a good span: n %d err %v", n, err)
		}
	}
	spanOf := func(l layer.Layer) int {
		e := l.Index().Entries[entryNamed(t, l, "b")]
		k := 0
		for j, c := range g.toc.Checkpoints {
			if c.Out <= e.DataOffset {
				k = j
			}
		}
		if k == 0 {
			t.Fatal("b is in span 0 with a")
		}
		return k
	}
	t.Run("blob", func(t *testing.T) {
		bad := bytes.Clone(g.blob)
		src := &recorder{b: bad}
		l := newLayer(t, g, src)
		start, end := g.toc.SpanRange(spanOf(l))
		bad[(start+end)/2] ^= 0x40
		check(t, l, src)
	})
	t.Run("digest", func(t *testing.T) {
		toc := *g.toc
		toc.SpanDigests = append(toc.SpanDigests[:0:0], g.toc.SpanDigests...)
		src := &recorder{b: g.blob}
		l, err := NewLayer(&toc, int64(len(g.blob)), src)
		if err != nil {
			t.Fatal(err)
		}
		toc.SpanDigests[spanOf(l)] = toc.SpanDigests[0]
		check(t, l, src)
	})
}

// checkedRecorder is a recorder that is a layer.CheckedSource, and
// records the verdicts it is given.
type checkedRecorder struct {
	recorder
	verdicts []error
}

func (s *checkedRecorder) ReadCheckedAt(ctx context.Context, p []byte, off int64, check func([]byte) error) (int, error) {
	n, err := s.ReadAt(ctx, p, off)
	if err != nil && err != io.EOF {
		return n, err
	}
	v := check(p[:n])
	s.verdicts = append(s.verdicts, v)
	return n, v
}

// TestLayerCheckedSource shows a bad span reaches a CheckedSource's
// ReadCheckedAt as a failed check, so a cache can drop those bytes.
func TestLayerCheckedSource(t *testing.T) {
	g := buildLayer(t, 32<<10)
	bad := bytes.Clone(g.blob)
	bad[len(bad)-20] ^= 1 // in the last span
	src := &checkedRecorder{recorder: recorder{b: bad}}
	l, err := NewLayer(g.toc, int64(len(bad)), src)
	if err != nil {
		t.Fatal(err)
	}
	n, err := l.ReadFile(context.Background(), entryNamed(t, l, "d"), make([]byte, 5), 0)
	if n != 0 || !errors.Is(err, layer.ErrCorrupt) {
		t.Fatalf("n %d err %v", n, err)
	}
	if len(src.verdicts) != 1 || !errors.Is(src.verdicts[0], layer.ErrCorrupt) {
		t.Errorf("verdicts %v, want one ErrCorrupt", src.verdicts)
	}
}

// TestNewLayerRefuses refuses a zTOC of another blob's size.
func TestNewLayerRefuses(t *testing.T) {
	g := buildLayer(t, 32<<10)
	for _, size := range []int64{int64(len(g.blob)) - 1, int64(len(g.blob)) + 1, 0} {
		if _, err := NewLayer(g.toc, size, &recorder{b: g.blob}); !errors.Is(err, ErrInvalid) {
			t.Errorf("blob size %d: err %v, want ErrInvalid", size, err)
		}
	}
	if _, err := NewLayer(nil, 1, &recorder{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil TOC: err %v", err)
	}
}

// TestLayerHostileCheckpoints reads every file through zTOCs whose
// checkpoints have random windows, bits and offsets, or spans too big to
// fetch:
// reads fail or return bytes, and never panic nor fetch a huge span.
func TestLayerHostileCheckpoints(t *testing.T) {
	g := buildLayer(t, 32<<10)
	r := rand.New(rand.NewPCG(7, 7))
	ctx := context.Background()
	for round := range 60 {
		toc := *g.toc
		toc.Checkpoints = append([]Checkpoint(nil), g.toc.Checkpoints...)
		for j := range toc.Checkpoints {
			c := &toc.Checkpoints[j]
			switch r.IntN(6) {
			case 0:
				w := make([]byte, WindowSize)
				for k := range w {
					w[k] = byte(r.Uint32())
				}
				c.Window = w
			case 1:
				c.Bits = uint8(r.IntN(8))
			case 2:
				// Offsets Parse would refuse, for a TOC made by hand:
				// out of order, past the blob.
				c.In = r.Int64N(int64(len(g.blob)) + 10)
			case 3:
				c.Out = r.Int64N(g.toc.UncompressedSize + 10)
			case 4:
				c.Window = nil
			}
			if round%5 == 0 {
				// Windows of a length inflate does not expect.
				c.Window = c.Window[:r.IntN(len(c.Window)+1)]
			}
		}
		src := &recorder{b: g.blob}
		l, err := NewLayer(&toc, int64(len(g.blob)), src)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range l.Index().Entries {
			p := make([]byte, e.Size+1)
			n, err := l.ReadFile(ctx, i, p, 0)
			if err == nil || (err != io.EOF && n != 0) {
				t.Errorf("round %d %s: n %d err %v", round, e.Name, n, err)
			}
			// ReadFile's recover is a backstop; the decoder itself
			// should not panic.
			if err != nil && strings.Contains(err.Error(), "panicked") {
				t.Errorf("round %d %s: %v", round, e.Name, err)
			}
		}
	}
	// A span over MaxSpan is refused before it is fetched: the zTOC is
	// cut after the span holding d, which then claims to run on to a
	// blob end past MaxSpan.
	toc := *g.toc
	d := g.toc.Entries[len(layerFiles)-1]
	k := 0
	for j, c := range toc.Checkpoints {
		if c.Out <= d.DataOffset {
			k = j
		}
	}
	toc.Checkpoints, toc.SpanDigests = toc.Checkpoints[:k+1], toc.SpanDigests[:k+1]
	toc.CompressedSize = toc.Checkpoints[k].In + MaxSpan + 1
	src := &recorder{b: g.blob}
	l, err := NewLayer(&toc, toc.CompressedSize, src)
	if err != nil {
		t.Fatal(err)
	}
	n, err := l.ReadFile(ctx, entryNamed(t, l, "d"), make([]byte, 5), 0)
	if n != 0 || !errors.Is(err, ErrInvalid) {
		t.Errorf("huge span: n %d err %v", n, err)
	}
	for _, rd := range src.reset() {
		if rd[1] > MaxSpan {
			t.Errorf("fetched %d bytes", rd[1])
		}
	}
}

// TestLayerConcurrent reads every file from many goroutines at once
// through one layer (run with -race): reads share no state.
func TestLayerConcurrent(t *testing.T) {
	g := buildLayer(t, 32<<10)
	l := newLayer(t, g, &recorder{b: g.blob})
	ids := make([]int, len(layerFiles))
	for k, f := range layerFiles {
		ids[k] = entryNamed(t, l, f.name)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range len(layerFiles) {
				f, i := layerFiles[(k+w)%len(layerFiles)], ids[(k+w)%len(layerFiles)]
				p := make([]byte, len(f.body))
				n, err := l.ReadFile(context.Background(), i, p, 0)
				if n != len(p) || (err != nil && err != io.EOF) || !bytes.Equal(p, f.body) {
					t.Errorf("%s: n %d err %v", f.name, n, err)
				}
			}
		}()
	}
	wg.Wait()
}

// TestLayerSequentialReads reads the big file front to back in 4 KiB
// reads, as the kernel might, and gets its bytes fetching each of its
// spans at most twice: reads continue the decoder the last one left,
// where decoding each read afresh would fetch its span once per read.
// (A decoder whose readahead reached the end of the spans its read
// needed cannot go on, so a span's tail may be decoded again.)
func TestLayerSequentialReads(t *testing.T) {
	g := buildLayer(t, 32<<10)
	src := &recorder{b: g.blob}
	l := newLayer(t, g, src)
	i := entryNamed(t, l, "big")
	e := l.Index().Entries[i]
	var got []byte
	p := make([]byte, 4<<10)
	for off := int64(0); ; off += int64(len(p)) {
		n, err := l.ReadFile(context.Background(), i, p, off)
		got = append(got, p[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, layerFiles[1].body) {
		t.Fatal("big read back differently")
	}
	var spans int64
	for k, c := range g.toc.Checkpoints {
		start, end := g.toc.SpanRange(k)
		next := g.toc.UncompressedSize
		if k+1 < len(g.toc.Checkpoints) {
			next = g.toc.Checkpoints[k+1].Out
		}
		if next > e.DataOffset && c.Out < e.DataOffset+e.Size {
			spans += end - start
		}
	}
	var fetched int64
	for _, r := range src.reset() {
		fetched += r[1]
	}
	if fetched > 2*spans {
		t.Errorf("fetched %d bytes for spans of %d", fetched, spans)
	}
	t.Logf("fetched %d bytes for spans of %d", fetched, spans)
}

// TestLayerRandomReads reads the files at random offsets and lengths,
// forward and back, so that reads take idle decoders in every state
// (cut off or not, before or after the read): every byte is right.
func TestLayerRandomReads(t *testing.T) {
	g := buildLayer(t, 32<<10)
	l := newLayer(t, g, &recorder{b: g.blob})
	r := rand.New(rand.NewPCG(3, 4))
	ids := make([]int, len(layerFiles))
	for k, f := range layerFiles {
		ids[k] = entryNamed(t, l, f.name)
	}
	for range 500 {
		k := r.IntN(len(layerFiles))
		body := layerFiles[k].body
		off := int64(r.IntN(len(body) + 1))
		p := make([]byte, r.IntN(70_000)+1)
		n, err := l.ReadFile(context.Background(), ids[k], p, off)
		want := body[off:min(off+int64(len(p)), int64(len(body)))]
		if !bytes.Equal(p[:n], want) || (err != nil && err != io.EOF) || (err == io.EOF) != (len(want) < len(p)) {
			t.Fatalf("%s at %d len %d: n %d err %v", layerFiles[k].name, off, len(p), n, err)
		}
	}
}

// TestLayerCrossingCorrupt tampers with the second of two spans a read
// crosses: the crossing read fails with ErrCorrupt and no bytes, while a
// read that ends just before the boundary succeeds without fetching the
// bad span at all.
func TestLayerCrossingCorrupt(t *testing.T) {
	g := buildLayer(t, 32<<10)
	bad := bytes.Clone(g.blob)
	src := &recorder{b: bad}
	l := newLayer(t, g, src)
	i := entryNamed(t, l, "big")
	e := l.Index().Entries[i]
	k := -1
	for j, c := range g.toc.Checkpoints {
		if c.Out > e.DataOffset+8 && c.Out < e.DataOffset+e.Size {
			k = j
			break
		}
	}
	if k < 0 {
		t.Fatal("no span boundary inside big")
	}
	start, end := g.toc.SpanRange(k)
	bad[(start+end)/2] ^= 0x10
	o := g.toc.Checkpoints[k].Out - e.DataOffset
	p := make([]byte, 8)
	if n, err := l.ReadFile(context.Background(), i, p, o-8); n != 8 || err != nil || !bytes.Equal(p, layerFiles[1].body[o-8:o]) {
		t.Errorf("read before the boundary: n %d err %v", n, err)
	}
	for _, r := range src.reset() {
		if r[0] >= start {
			t.Errorf("fetched [%d,+%d) from the bad span at %d", r[0], r[1], start)
		}
	}
	n, err := l.ReadFile(context.Background(), i, p, o-4)
	if n != 0 || !errors.Is(err, layer.ErrCorrupt) {
		t.Errorf("read across the boundary: n %d err %v, want ErrCorrupt and no bytes", n, err)
	}
}
