package layer

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/imgfs/imgfs/internal/oci"
)

// capEntries sets the entry cap to n for the test.
func capEntries(t *testing.T, n int) {
	t.Helper()
	SetMaxEntries(n)
	t.Cleanup(func() { SetMaxEntries(0) })
}

// entriesTar is a tar of a directory and n-1 files in it: n entries.
func entriesTar(t *testing.T, n int) []byte {
	files := []file{dir("d/")}
	for i := 1; i < n; i++ {
		files = append(files, reg(fmt.Sprintf("d/f%03d", i), ""))
	}
	return mkTar(t, files...)
}

func gzipped(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// wantCapError checks that err and the index's Check both say the layer is
// over the cap, name the cap and say why there is one.
func wantCapError(t *testing.T, err error, idx *Index, limit int) {
	t.Helper()
	if !errors.Is(err, ErrTooManyEntries) || !errors.Is(err, ErrBroken) {
		t.Fatalf("err %v, want ErrTooManyEntries and ErrBroken", err)
	}
	want := fmt.Sprintf("more than %d, the cap on entries per layer, which bounds the memory a layer's index takes", limit)
	if !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Errorf("err %q, want one line with %q", err, want)
	}
	if idx == nil {
		return
	}
	cerr := idx.Check()
	if !errors.Is(cerr, ErrBroken) || cerr.Error() != err.Error() {
		t.Errorf("Check: %v, want %v", cerr, err)
	}
	if len(idx.Entries) > limit {
		t.Errorf("the index holds %d entries, over the cap of %d", len(idx.Entries), limit)
	}
}

// TestEntryCapBuilders: every builder takes a layer of exactly the cap,
// and refuses one entry more as a broken layer, without holding more than
// the cap.
func TestEntryCapBuilders(t *testing.T) {
	const limit = 20
	capEntries(t, limit)
	builders := []struct {
		name  string
		build func([]byte) (*Index, error)
	}{
		{"tar", func(b []byte) (*Index, error) { return BuildTar(bytes.NewReader(b)) }},
		{"walk", func(b []byte) (*Index, error) {
			idx, _, err := WalkTar(context.Background(), &recordingSource{b: b}, int64(len(b)), WalkOptions{})
			return idx, err
		}},
		{"gzip", func(b []byte) (*Index, error) { return BuildGzip(bytes.NewReader(gzipped(t, b)), BuildOptions{}) }},
	}
	for _, bd := range builders {
		t.Run(bd.name, func(t *testing.T) {
			idx, err := bd.build(entriesTar(t, limit))
			if err != nil || idx.Check() != nil || len(idx.Entries) != limit {
				t.Fatalf("a layer of exactly the cap: %v, %v, %d entries", err, idx.Check(), len(idx.Entries))
			}
			idx, err = bd.build(entriesTar(t, limit+1))
			wantCapError(t, err, idx, limit)
		})
	}
}

// TestEntryCapCheck: an index over the cap from any source (a stored one
// made under a higher cap, say) is broken.
func TestEntryCapCheck(t *testing.T) {
	idx := mustIndex(t, dir("d/"), reg("d/a", ""), reg("d/b", ""))
	capEntries(t, 2)
	wantCapError(t, idx.Check(), nil, 2)
}

// TestEntryCapDecode: a stored index over the cap is refused before its
// entries are allocated.
func TestEntryCapDecode(t *testing.T) {
	idx := mustIndex(t, dir("d/"), reg("d/a", ""), reg("d/b", ""))
	data, err := idx.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	capEntries(t, 2)
	if _, err := UnmarshalIndex(data); err == nil || !strings.Contains(err.Error(), "cap on entries per layer") {
		t.Errorf("decode over the cap: %v", err)
	}
	capEntries(t, 3)
	if _, err := UnmarshalIndex(data); err != nil {
		t.Errorf("decode at the cap: %v", err)
	}
}

// TestEntryCapTOC: an eStargz or zstd:chunked TOC of more entries than
// the cap opens as a broken layer.
func TestEntryCapTOC(t *testing.T) {
	const limit = 10
	raw := entriesTar(t, limit+1)
	for _, format := range []oci.LayerFormat{oci.FormatEStargz, oci.FormatZstdChunked} {
		t.Run(format.String(), func(t *testing.T) {
			blob, toc := buildTOCLayer(t, format, raw)
			capEntries(t, limit+1)
			if _, err := OpenEStargz(context.Background(), &recordingSource{b: blob}, int64(len(blob)), format, toc); err != nil {
				t.Fatalf("at the cap: %v", err)
			}
			capEntries(t, limit)
			_, err := OpenEStargz(context.Background(), &recordingSource{b: blob}, int64(len(blob)), format, toc)
			wantCapError(t, err, nil, limit)
		})
	}
}
