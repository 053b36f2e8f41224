package socitest

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/awslabs/soci-snapshotter/ztoc"
	"github.com/awslabs/soci-snapshotter/ztoc/compression"
	"github.com/opencontainers/go-digest"
)

// ReadBack reads every regular file of the layer blob through the zTOC
// with SOCI's own reader: ztoc.Unmarshal, then ztoc.ExtractFile for each
// file, which fetches the spans holding it and resumes inflating at their
// checkpoints. First it checks the zTOC against the blob as SOCI's
// snapshotter does before it serves a span: the compressed size, and each
// span's digest over the bytes SOCI's zinfo says the span covers.
//
// The map is keyed by the names the zTOC records, which are the tar's.
// ExtractFile finds a file by name, the first entry of that name, so a
// zTOC naming one regular file twice is refused.
func ReadBack(ztocBytes, blob []byte) (map[string][]byte, error) {
	zt, err := ztoc.Unmarshal(bytes.NewReader(ztocBytes))
	if err != nil {
		return nil, fmt.Errorf("soci ztoc.Unmarshal: %w", err)
	}
	if err := CheckSpans(zt, blob); err != nil {
		return nil, err
	}
	r := io.NewSectionReader(bytes.NewReader(blob), 0, int64(len(blob)))
	files := map[string][]byte{}
	for _, md := range zt.FileMetadata {
		if md.Type != "reg" {
			continue
		}
		if _, dup := files[md.Name]; dup {
			return nil, fmt.Errorf("zTOC lists %q twice: SOCI's ExtractFile reads only the first", md.Name)
		}
		b, err := zt.ExtractFile(r, md.Name)
		switch {
		case err != nil:
			return nil, fmt.Errorf("soci ExtractFile %q: %w", md.Name, err)
		case b == nil && md.UncompressedSize > 0:
			// ExtractFile returns nil, nil when it cannot decode the
			// zTOC's checkpoints.
			return nil, fmt.Errorf("soci ExtractFile %q: no data (the checkpoints do not decode)", md.Name)
		case int64(len(b)) != int64(md.UncompressedSize):
			return nil, fmt.Errorf("soci ExtractFile %q: %d bytes, the zTOC says %d", md.Name, len(b), md.UncompressedSize)
		}
		files[md.Name] = b
	}
	return files, nil
}

// CheckSpans checks SOCI's zTOC zt against the layer blob as SOCI does:
// the compressed size is the blob's, there is a digest per span, and
// span i's digest is the sha256 of the blob from SOCI's
// StartCompressedOffset(i) to its EndCompressedOffset(i).
func CheckSpans(zt *ztoc.Ztoc, blob []byte) error {
	if int64(zt.CompressedArchiveSize) != int64(len(blob)) {
		return fmt.Errorf("zTOC's compressed size %d, the blob has %d bytes", zt.CompressedArchiveSize, len(blob))
	}
	zinfo, err := zt.Zinfo()
	if err != nil {
		return fmt.Errorf("soci Zinfo: %w", err)
	}
	defer zinfo.Close()
	if int(zinfo.MaxSpanID()) != int(zt.MaxSpanID) || len(zt.SpanDigests) != int(zt.MaxSpanID)+1 {
		return fmt.Errorf("zTOC's max span id %d, its checkpoints' %d, %d span digests", zt.MaxSpanID, zinfo.MaxSpanID(), len(zt.SpanDigests))
	}
	size := compression.Offset(len(blob))
	for i := compression.SpanID(0); i <= zt.MaxSpanID; i++ {
		start, end := zinfo.StartCompressedOffset(i), zinfo.EndCompressedOffset(i, size)
		if start < 0 || end < start || end > size {
			return fmt.Errorf("span %d: SOCI's range [%d,%d) is outside the blob's %d bytes", i, start, end, size)
		}
		if got := digest.FromBytes(blob[start:end]); got != zt.SpanDigests[i] {
			return fmt.Errorf("span %d [%d,%d): sha256 %s, the zTOC says %s", i, start, end, got, zt.SpanDigests[i])
		}
	}
	return nil
}

// ReadBackZtoc is ReadBack for tests: it fails t when SOCI's reader
// refuses the zTOC or cannot read a file through it.
func ReadBackZtoc(t testing.TB, ztocBytes, blob []byte) map[string][]byte {
	t.Helper()
	files, err := ReadBack(ztocBytes, blob)
	if err != nil {
		t.Fatalf("SOCI's reader on the zTOC: %v", err)
	}
	return files
}
