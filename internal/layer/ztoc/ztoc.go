package ztoc

import (
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/imgfs/imgfs/internal/layer"
	"github.com/imgfs/imgfs/internal/oci"
)

// Reasons Parse refuses a zTOC; every error it returns wraps one of them.
var (
	// ErrInvalid means the zTOC is malformed or does not hold together:
	// a bad index, never to be used.
	ErrInvalid = errors.New("invalid zTOC")
	// ErrUnsupported means a zTOC of a version or compression algorithm
	// imgfs does not read.
	ErrUnsupported = errors.New("unsupported zTOC")
)

// Limits bound what Parse accepts. A field left 0 takes its default.
type Limits struct {
	// MaxSize bounds the zTOC's bytes (DefaultMaxSize). A flatbuffer
	// cannot exceed 2 GiB, whatever the limit.
	MaxSize int64
	// MaxEntries bounds the tar entries (DefaultMaxEntries), and never
	// above layer.MaxEntries.
	MaxEntries int
	// MaxString bounds every string Parse reads (DefaultMaxString): link
	// names, PAX record keys, extended attribute values, times, digests.
	// Names are also held to NormalizeName's 4096 bytes.
	MaxString int
}

// The default Limits.
const (
	DefaultMaxSize    = 1 << 30
	DefaultMaxEntries = 4 << 20
	// DefaultMaxString is Linux's largest extended attribute value.
	DefaultMaxString = 64 << 10
)

func (l Limits) withDefaults() Limits {
	if l.MaxSize <= 0 {
		l.MaxSize = DefaultMaxSize
	}
	l.MaxSize = min(l.MaxSize, maxBuffer)
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	// Whatever the zTOC may hold, a layer's index holds no more than
	// internal/layer's cap.
	l.MaxEntries = min(l.MaxEntries, layer.MaxEntries())
	if l.MaxString <= 0 {
		l.MaxString = DefaultMaxString
	}
	return l
}

// TOC is a parsed zTOC of a gzip layer.
type TOC struct {
	Version   string // the zTOC's version, "0.9"
	BuildTool string // the build_tool_identifier, as recorded
	// CompressedSize is the layer blob's size, as the zTOC claims it; the
	// caller compares it with the layer's descriptor.
	CompressedSize int64
	// UncompressedSize is the tar stream's size up to the end of the
	// archive; every entry lies within it.
	UncompressedSize int64
	// Entries are the tar entries in stream order, names normalized, with
	// the offset of each one's headers derived as SOCI derives it (see
	// the package doc).
	Entries []layer.Entry
	// Headers, when not nil, hold one Header per entry: what its tar
	// headers record beyond the entry, for Encode to write as SOCI's
	// builder does. Build sets them; Parse leaves them nil, since it reads
	// only what imgfs uses.
	Headers []Header
	// SpanSize is the span size the zTOC was built with: SOCI puts each
	// checkpoint after the first more than SpanSize bytes of output past
	// the one before. Parse does not hold the checkpoints to it.
	SpanSize int64
	// Checkpoints start the spans: span i starts at Checkpoints[i]. The
	// first is at uncompressed offset 0, and both offsets increase, but
	// that several may share output 0, where a stream starts with empty
	// blocks or members (see checkRaw); a read resumes at the last of
	// them.
	Checkpoints []Checkpoint
	// SpanDigests are the sha256 digests of the spans' compressed bytes,
	// one per checkpoint; SpanRange says which bytes.
	SpanDigests []digest.Digest
}

// SpanRange returns the compressed bytes [start, end) that SpanDigests[i]
// covers: from the byte holding the span's first bit to the first whole
// byte after the next checkpoint's first bit (so a byte shared by two spans
// is in both), the last span to CompressedSize.
func (t *TOC) SpanRange(i int) (start, end int64) {
	start = t.Checkpoints[i].In
	if i+1 == len(t.Checkpoints) {
		return start, t.CompressedSize
	}
	next := t.Checkpoints[i+1]
	if next.Bits != 0 {
		return start, next.In + 1
	}
	return start, next.In
}

// The zTOC version imgfs reads, the only one SOCI writes.
const version09 = "0.9"

// The slots of the tables in ztoc.fbs that Parse reads.
const (
	ztocVersion          = 0
	ztocBuildTool        = 1
	ztocCompressedSize   = 2
	ztocUncompressedSize = 3
	ztocTOC              = 4
	ztocCompressionInfo  = 5

	tocMetadata = 0

	infoAlgorithm   = 0
	infoMaxSpanID   = 1
	infoSpanDigests = 2
	infoCheckpoints = 3
)

// The values of ztoc.fbs's CompressionAlgorithm.
const (
	algorithmGzip         = 1
	algorithmUncompressed = 2
)

// maxDeflateRatio is the most output one byte of deflate data can make:
// a 258-byte match in as few as 2 bits. It bounds a gzip stream's
// uncompressed size by its compressed size.
const maxDeflateRatio = 1032

// Parse reads a zTOC, checking it as hostile input: it returns a TOC only
// when every field it reads lies in the buffer and holds together, and
// otherwise a one-line error wrapping ErrInvalid or ErrUnsupported. lim
// bounds the zTOC's size, its entries and its strings; the work and memory
// of reading are bounded by the zTOC's size, even when its offsets point
// many times at one object.
//
// No panic escapes: every read is checked before it is made, and a panic
// that a missed check would let through becomes an ErrInvalid.
func Parse(data []byte, lim Limits) (*TOC, error) {
	return guard(func() (*TOC, error) { return parse(data, lim, WindowSize) })
}

// guard runs f and turns a panic into an ErrInvalid.
func guard(f func() (*TOC, error)) (toc *TOC, err error) {
	defer func() {
		if r := recover(); r != nil {
			toc, err = nil, fmt.Errorf("%w: malformed (%v)", ErrInvalid, r)
		}
	}()
	return f()
}

// parse is Parse without the recover, so that the fuzz target sees any
// panic the checks miss, and with the zinfo's window size as a parameter
// (see decodeZinfo).
func parse(data []byte, lim Limits, window int) (*TOC, error) {
	lim = lim.withDefaults()
	if int64(len(data)) > lim.MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, over the limit of %d", ErrInvalid, len(data), lim.MaxSize)
	}
	buf := newBuffer(data)
	root, err := buf.root()
	if err != nil {
		return nil, invalid(err)
	}
	t := &TOC{}
	if t.Version, _, err = root.string(ztocVersion, lim.MaxString, "version"); err != nil {
		return nil, invalid(err)
	}
	if t.Version != version09 {
		return nil, fmt.Errorf("%w: version %s, want %q", ErrUnsupported, oci.Quote(t.Version), version09)
	}
	if t.BuildTool, _, err = root.string(ztocBuildTool, lim.MaxString, "build tool"); err != nil {
		return nil, invalid(err)
	}
	if err := t.readSizes(root); err != nil {
		return nil, invalid(err)
	}
	// The algorithm is checked first, so that an uncompressed layer's
	// zTOC is refused as unsupported before its entries are read.
	info, ok, err := root.table(ztocCompressionInfo, "compression info")
	if err == nil && !ok {
		err = errors.New("no compression info")
	}
	if err != nil {
		return nil, invalid(err)
	}
	if err := checkAlgorithm(info); err != nil {
		return nil, err
	}
	// The entries are read before the spans so that the fuzzer's inputs,
	// whose zinfo blobs are mostly broken, still reach their checks.
	toc, ok, err := root.table(ztocTOC, "toc")
	if err == nil && !ok {
		err = errors.New("no toc table")
	}
	if err == nil {
		t.Entries, err = readEntries(toc, t.UncompressedSize, lim)
	}
	if err != nil {
		return nil, invalid(err)
	}
	if err := t.readSpans(info, lim, window); err != nil {
		return nil, invalid(err)
	}
	return t, nil
}

func invalid(err error) error { return fmt.Errorf("%w: %w", ErrInvalid, err) }

// readSizes reads the archive's sizes, which every offset is checked
// against.
func (t *TOC) readSizes(root table) error {
	var err error
	if t.CompressedSize, err = root.int64(ztocCompressedSize, 0, "compressed size"); err != nil {
		return err
	}
	if t.UncompressedSize, err = root.int64(ztocUncompressedSize, 0, "uncompressed size"); err != nil {
		return err
	}
	return t.checkSizes()
}

// checkSizes holds the sizes a zTOC states to what a gzip layer can be;
// the bound also keeps every offset+size sum in an int64.
func (t *TOC) checkSizes() error {
	switch c, u := t.CompressedSize, t.UncompressedSize; {
	case c < 1 || c > oci.MaxBlobSize:
		return fmt.Errorf("compressed size %d is outside 1 to %d", c, oci.MaxBlobSize)
	case u < 0 || u > c*maxDeflateRatio:
		return fmt.Errorf("uncompressed size %d is outside 0 to %d times the compressed size %d", u, maxDeflateRatio, c)
	}
	return nil
}

// checkAlgorithm accepts gzip, the schema's default when the field is
// left out.
func checkAlgorithm(info table) error {
	alg, err := info.byte(infoAlgorithm, algorithmGzip, "compression algorithm")
	switch {
	case err != nil:
		return invalid(err)
	case alg == algorithmUncompressed:
		// An uncompressed layer's tar headers can be read by range
		// without any index.
		return fmt.Errorf("%w: compression algorithm uncompressed, want gzip", ErrUnsupported)
	case alg != algorithmGzip:
		return fmt.Errorf("%w: compression algorithm %d, want gzip (%d)", ErrUnsupported, alg, algorithmGzip)
	}
	return nil
}

// readSpans reads the checkpoints and the span digests, and checks that
// max_span_id, the checkpoints and the digests count the same spans.
func (t *TOC) readSpans(info table, lim Limits, window int) error {
	maxSpanID, err := info.int32(infoMaxSpanID, 0, "max span id")
	if err != nil {
		return err
	}
	if maxSpanID < 0 {
		return fmt.Errorf("max span id %d is negative", maxSpanID)
	}
	spans := int(maxSpanID) + 1
	blob, err := info.bytes(infoCheckpoints, int(lim.MaxSize), "checkpoints")
	if err != nil {
		return err
	}
	if t.SpanSize, t.Checkpoints, err = decodeZinfo(blob, t.CompressedSize, window); err != nil {
		return err
	}
	if len(t.Checkpoints) != spans {
		return fmt.Errorf("%d checkpoints for %d spans (max span id %d)", len(t.Checkpoints), spans, maxSpanID)
	}
	digests, err := info.vector(infoSpanDigests, 4, "span digests")
	if err != nil {
		return err
	}
	if digests.n != spans {
		return fmt.Errorf("%d span digests for %d spans (max span id %d)", digests.n, spans, maxSpanID)
	}
	t.SpanDigests = make([]digest.Digest, spans)
	for i := range t.SpanDigests {
		s, err := digests.string(i, lim.MaxString, "span digest")
		if err != nil {
			return fmt.Errorf("span %d: %w", i, err)
		}
		d := digest.Digest(s)
		if err := oci.CheckDigest(d); err != nil {
			return fmt.Errorf("span %d: %w", i, err)
		}
		if d.Algorithm() != digest.SHA256 {
			return fmt.Errorf("span %d: digest %s is not sha256", i, d)
		}
		t.SpanDigests[i] = d
	}
	return nil
}
