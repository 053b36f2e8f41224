package sociinterop

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"strings"
	"testing"

	"github.com/awslabs/soci-snapshotter/ztoc/compression"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/layer"
	"github.com/imgfs/imgfs/internal/layer/ztoc"
	"github.com/imgfs/imgfs/internal/layertest"
	"github.com/imgfs/imgfs/internal/sociinterop/socitest"
)

// ztocCase is a gzip layer of the fixture and the span size SOCI builds
// its zTOC with.
type ztocCase struct {
	name     string
	blob     []byte
	spanSize int64
	// minSpans is the fewest spans the zTOC must have, so that a case
	// meant to cross many span boundaries does. SOCI puts a checkpoint
	// at the first deflate block boundary past the span size, and
	// compress/flate's blocks hold up to 64 KiB of input, so spans run
	// from the span size to about twice it.
	minSpans int
}

func ztocCases(raw []byte) []ztocCase {
	return []ztocCase{
		{"gzip BestSpeed, 64 KiB spans", layertest.Gzip(raw, gzip.BestSpeed), 64 << 10, 10},
		{"gzip default level, 64 KiB spans", layertest.Gzip(raw, gzip.DefaultCompression), 64 << 10, 10},
		{"gzip BestCompression, 20 KiB spans", layertest.Gzip(raw, gzip.BestCompression), 20 << 10, 20},
		{"three gzip members, 64 KiB spans", gzipMembers(raw, 3), 64 << 10, 10},
		{"gzip BestSpeed, SOCI's default span size", layertest.Gzip(raw, gzip.BestSpeed), 0, 1},
	}
}

// gzipLayer is the descriptor of a gzip layer blob.
func gzipLayer(blob []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(blob), Size: int64(len(blob))}
}

// TestSOCIZtocParses builds zTOCs of a layer holding every kind of entry
// with SOCI's own builder, then holds imgfs's ztoc package to them: Parse
// accepts each; its entries, sizes, checkpoints and span ranges are what
// the tar and SOCI's own zinfo say; every span digest is the sha256 of the
// bytes SpanRange gives; and NewLayer reads every regular file back
// exactly.
func TestSOCIZtocParses(t *testing.T) {
	raw := socitest.FixtureTar(1)
	want := readTar(t, raw)
	checkFixtureCovers(t, want)
	for _, tc := range ztocCases(raw) {
		t.Run(tc.name, func(t *testing.T) {
			desc := gzipLayer(tc.blob)
			z, err := socitest.BuildZtoc(tc.blob, desc, socitest.Options{SpanSize: tc.spanSize})
			if err != nil {
				t.Fatal(err)
			}
			toc, err := ztoc.Parse(z.Bytes, ztoc.Limits{})
			if err != nil {
				t.Fatalf("ztoc.Parse refuses SOCI's zTOC (%d bytes): %v", len(z.Bytes), err)
			}
			t.Logf("layer %d bytes (tar %d), zTOC %d bytes, %d spans", len(tc.blob), len(raw), len(z.Bytes), len(toc.Checkpoints))
			checkHeader(t, toc, tc, want, len(raw))
			checkEntries(t, toc.Entries, want)
			checkSpans(t, toc, z, tc.blob)
			checkLayerReads(t, toc, tc.blob, want)
		})
	}
}

// checkFixtureCovers fails when the fixture lacks a kind of entry the
// test is meant to cover.
func checkFixtureCovers(t *testing.T, l tarLayout) {
	t.Helper()
	has := map[string]bool{}
	for _, e := range l.entries {
		h := e.hdr
		has[string(h.Typeflag)] = true
		has["long name"] = has["long name"] || len(h.Name) > 100
		has["long link"] = has["long link"] || len(h.Linkname) > 100
		has["empty file"] = has["empty file"] || (h.Typeflag == tar.TypeReg && h.Size == 0)
		has["owner"] = has["owner"] || h.Uid != 0
		has["setuid"] = has["setuid"] || h.Mode&0o4000 != 0
		for k := range h.PAXRecords {
			has["xattr"] = has["xattr"] || strings.HasPrefix(k, "SCHILY.xattr.")
		}
	}
	for _, want := range []string{string(tar.TypeReg), string(tar.TypeDir), string(tar.TypeSymlink), string(tar.TypeLink),
		string(tar.TypeChar), string(tar.TypeFifo), "long name", "long link", "empty file", "owner", "setuid", "xattr"} {
		if !has[want] {
			t.Errorf("the fixture has no entry of kind %q", want)
		}
	}
}

func checkHeader(t *testing.T, toc *ztoc.TOC, tc ztocCase, want tarLayout, tarSize int) {
	t.Helper()
	span := tc.spanSize
	if span == 0 {
		span = socitest.DefaultSpanSize
	}
	if toc.Version != "0.9" || toc.BuildTool != socitest.BuildTool {
		t.Errorf("version %q, build tool %q; want 0.9 and %q", toc.Version, toc.BuildTool, socitest.BuildTool)
	}
	if toc.CompressedSize != int64(len(tc.blob)) {
		t.Errorf("CompressedSize %d, the blob has %d bytes", toc.CompressedSize, len(tc.blob))
	}
	if toc.UncompressedSize != want.end || want.end != int64(tarSize) {
		t.Errorf("UncompressedSize %d; archive/tar ends the archive at %d, the tar has %d bytes", toc.UncompressedSize, want.end, tarSize)
	}
	if toc.SpanSize != span {
		t.Errorf("SpanSize %d, built with %d", toc.SpanSize, span)
	}
	if len(toc.Checkpoints) < tc.minSpans {
		t.Errorf("%d spans, want at least %d", len(toc.Checkpoints), tc.minSpans)
	}
}

// checkEntries compares Parse's entries with the tar's, field by field.
func checkEntries(t *testing.T, got []layer.Entry, want tarLayout) {
	t.Helper()
	if len(got) != len(want.entries) {
		t.Fatalf("%d entries, the tar has %d", len(got), len(want.entries))
	}
	types := map[byte]layer.Type{
		tar.TypeReg: layer.TypeRegular, tar.TypeDir: layer.TypeDir, tar.TypeSymlink: layer.TypeSymlink,
		tar.TypeLink: layer.TypeHardlink, tar.TypeChar: layer.TypeChar, tar.TypeBlock: layer.TypeBlock, tar.TypeFifo: layer.TypeFifo,
	}
	for i, w := range want.entries {
		g, h := got[i], w.hdr
		name := strings.TrimSuffix(h.Name, "/")
		var xattrs map[string]string
		for k, v := range h.PAXRecords {
			if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				if xattrs == nil {
					xattrs = map[string]string{}
				}
				xattrs[x] = v
			}
		}
		size, dev := int64(0), [2]int64{}
		if h.Typeflag == tar.TypeReg {
			size = h.Size
		}
		if h.Typeflag == tar.TypeChar || h.Typeflag == tar.TypeBlock {
			dev = [2]int64{h.Devmajor, h.Devminor}
		}
		var bad []string
		check := func(field string, ok bool, g, w any) {
			if !ok {
				bad = append(bad, fmt.Sprintf("%s %v, want %v", field, g, w))
			}
		}
		check("name", g.Name == name, g.Name, name)
		check("type", g.Type == types[h.Typeflag], g.Type, types[h.Typeflag])
		check("mode", g.Mode == uint16(h.Mode&0o7777), fmt.Sprintf("%o", g.Mode), fmt.Sprintf("%o", h.Mode&0o7777))
		check("uid:gid", g.UID == h.Uid && g.GID == h.Gid, [2]int{g.UID, g.GID}, [2]int{h.Uid, h.Gid})
		check("mtime", g.ModTime().Equal(h.ModTime), g.ModTime(), h.ModTime)
		check("size", g.Size == size, g.Size, size)
		check("link", g.Linkname == h.Linkname, g.Linkname, h.Linkname)
		check("xattrs", maps.Equal(g.Xattrs, xattrs), g.Xattrs, xattrs)
		check("device", [2]int64{g.Devmajor, g.Devminor} == dev, [2]int64{g.Devmajor, g.Devminor}, dev)
		check("header offset", g.Offset == w.headerOffset, g.Offset, w.headerOffset)
		check("data offset", g.DataOffset == w.dataOffset, g.DataOffset, w.dataOffset)
		check("sparse", !g.Sparse, g.Sparse, false)
		check("bad", g.Bad == "", g.Bad, "")
		if len(bad) > 0 {
			t.Errorf("entry %d %q: %s", i, h.Name, strings.Join(bad, "; "))
		}
	}
}

// checkSpans holds the checkpoints and span ranges to SOCI's own zinfo
// and the span digests to the blob.
func checkSpans(t *testing.T, toc *ztoc.TOC, z *socitest.Ztoc, blob []byte) {
	t.Helper()
	zinfo, err := z.TOC.Zinfo()
	if err != nil {
		t.Fatal(err)
	}
	defer zinfo.Close()
	if n := int(zinfo.MaxSpanID()) + 1; len(toc.Checkpoints) != n || len(toc.SpanDigests) != n {
		t.Fatalf("%d checkpoints and %d span digests; SOCI's zinfo has %d spans", len(toc.Checkpoints), len(toc.SpanDigests), n)
	}
	for i := range toc.Checkpoints {
		id := compression.SpanID(i)
		start, end := toc.SpanRange(i)
		sStart, sEnd := int64(zinfo.StartCompressedOffset(id)), int64(zinfo.EndCompressedOffset(id, compression.Offset(len(blob))))
		if start != sStart || end != sEnd {
			t.Errorf("span %d: SpanRange [%d,%d), SOCI's zinfo says [%d,%d)", i, start, end, sStart, sEnd)
		}
		if out := int64(zinfo.StartUncompressedOffset(id)); toc.Checkpoints[i].Out != out {
			t.Errorf("span %d: checkpoint at uncompressed %d, SOCI's zinfo says %d", i, toc.Checkpoints[i].Out, out)
		}
		if start < 0 || end > int64(len(blob)) || end <= start {
			t.Errorf("span %d: range [%d,%d) outside the blob's %d bytes", i, start, end, len(blob))
			continue
		}
		sum := sha256.Sum256(blob[start:end])
		if got := "sha256:" + hex.EncodeToString(sum[:]); string(toc.SpanDigests[i]) != got || z.TOC.SpanDigests[i] != toc.SpanDigests[i] {
			t.Errorf("span %d [%d,%d): Parse gives digest %s, SOCI wrote %s, the bytes hash to %s", i, start, end, toc.SpanDigests[i], z.TOC.SpanDigests[i], got)
		}
	}
}

// checkLayerReads reads every regular file through NewLayer, whole and
// in pieces at odd offsets, and compares with the tar.
func checkLayerReads(t *testing.T, toc *ztoc.TOC, blob []byte, want tarLayout) {
	t.Helper()
	var fetched int64
	src := blobio.ReaderAtFunc(func(_ context.Context, p []byte, off int64) (int, error) {
		if off >= int64(len(blob)) {
			return 0, io.EOF
		}
		n := copy(p, blob[off:])
		fetched += int64(n)
		if n < len(p) {
			return n, io.EOF
		}
		return n, nil
	})
	l, err := ztoc.NewLayer(toc, int64(len(blob)), src)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	files := want.files()
	read := 0
	for i, e := range l.Index().Entries {
		if e.Type != layer.TypeRegular {
			continue
		}
		content, ok := files[e.Name]
		if !ok {
			t.Errorf("entry %d %q: not a regular file of the tar", i, e.Name)
			continue
		}
		got := make([]byte, len(content)+10)
		n, err := l.ReadFile(ctx, i, got, 0)
		if n != len(content) || (err != io.EOF && !(err == nil && len(content) == 0)) || !bytes.Equal(got[:n], content) {
			t.Errorf("ReadFile(%q) whole: %d bytes, %v; want the tar's %d bytes and io.EOF", e.Name, n, err, len(content))
			continue
		}
		// Pieces of a prime size at odd offsets cross the spans at
		// every phase.
		const piece = 7919
		for off := int64(len(content) % 13); off < int64(len(content)); off += 3 * piece {
			p := make([]byte, piece)
			n, err := l.ReadFile(ctx, i, p, off)
			wantN := min(piece, int64(len(content))-off)
			if int64(n) != wantN || (err != nil && err != io.EOF) || !bytes.Equal(p[:n], content[off:off+wantN]) {
				t.Errorf("ReadFile(%q, %d bytes at %d) = %d, %v; want the tar's %d bytes", e.Name, piece, off, n, err, wantN)
				break
			}
		}
		read++
	}
	if read != len(files) {
		t.Errorf("read %d regular files, the tar has %d", read, len(files))
	}
	t.Logf("read %d files through the zTOC, fetching %d blob bytes", read, fetched)
}
