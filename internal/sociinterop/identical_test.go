package sociinterop

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"testing"
	"time"

	"github.com/imgfs/imgfs/internal/layer/ztoc"
	"github.com/imgfs/imgfs/internal/layertest"
	"github.com/imgfs/imgfs/internal/sociinterop/socitest"
)

// SOCI's toc builder takes each entry's mod_time from archive/tar, which
// returns it in time.Local, and its ztoc.Marshal writes it with the zone
// (time.Time's MarshalText): SOCI's zTOC of a layer depends on the zone of
// the machine that builds it, where imgfs's Encode writes UTC. Pinning
// this test binary's zone to UTC, before any test runs and any goroutine
// reads it, makes SOCI's bytes the ones Encode is held to wherever the
// tests run, without relying on $TZ.
func init() { time.Local = time.UTC }

// oddTime is the mod time of the entries oddTar adds, with nanoseconds,
// which both marshallers write.
var oddTime = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)

// oddTar is a tar of what a zTOC must spell as the tar does: a root entry
// "./", then the entries of base (a tar, or nil), then names with a
// leading "./", a leading "/" and a doubled slash, hard links to each of
// those spellings, a file with PAX extended attributes beside a PAX record
// that is not one, a block and a character device, and a fifo.
func oddTar(t *testing.T, base []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	write := func(h *tar.Header, body []byte) {
		t.Helper()
		if h.ModTime.IsZero() {
			h.ModTime = oddTime
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
	}
	write(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	if base != nil {
		tr := tar.NewReader(bytes.NewReader(base))
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			write(h, body)
		}
	}
	x, y := layertest.Textish(11, 700), layertest.Textish(12, 5)
	write(&tar.Header{Name: "./etc/", Typeflag: tar.TypeDir, Mode: 0o755, Uname: "root"}, nil)
	write(&tar.Header{Name: "./etc/x", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(x))}, x)
	write(&tar.Header{Name: "/etc//y", Typeflag: tar.TypeReg, Mode: 0o4755, Size: int64(len(y)),
		Uid: 1000, Gid: 1000, Uname: "u", Gname: "g"}, y)
	write(&tar.Header{Name: "etc/hard-x", Typeflag: tar.TypeLink, Linkname: "./etc/x"}, nil)
	write(&tar.Header{Name: "./etc/hard-y", Typeflag: tar.TypeLink, Linkname: "/etc//y"}, nil)
	write(&tar.Header{Name: "etc/sym", Typeflag: tar.TypeSymlink, Linkname: "../etc//x", Mode: 0o777}, nil)
	write(&tar.Header{Name: "bin/ping", Typeflag: tar.TypeReg, Mode: 0o755, Size: 1, Format: tar.FormatPAX,
		PAXRecords: map[string]string{
			"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20",
			"SCHILY.xattr.user.k":              "v",
			"comment":                          "not an extended attribute",
		}}, []byte("p"))
	write(&tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3}, nil)
	write(&tar.Header{Name: "dev/sda", Typeflag: tar.TypeBlock, Mode: 0o660, Gid: 6, Devmajor: 8, Devminor: 0}, nil)
	write(&tar.Header{Name: "run/fifo", Typeflag: tar.TypeFifo, Mode: 0o600}, nil)
	write(&tar.Header{Name: "./empty", Typeflag: tar.TypeReg, Mode: 0o644}, nil)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// zlibStoredMember is a gzip member of one final stored block holding b,
// as zlib writes a member whose last block holds data, where
// compress/gzip ends every member with an empty block. b must be under
// 64 KiB.
func zlibStoredMember(b []byte) []byte {
	m := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 1}
	m = binary.LittleEndian.AppendUint16(m, uint16(len(b)))
	m = binary.LittleEndian.AppendUint16(m, ^uint16(len(b)))
	m = append(m, b...)
	m = binary.LittleEndian.AppendUint32(m, crc32.ChecksumIEEE(b))
	return binary.LittleEndian.AppendUint32(m, uint32(len(b)))
}

// TestEncodeIdentical builds the zTOC of each layer twice, with imgfs's
// Build and Encode and with SOCI's BuildZtoc and Marshal, and holds
// imgfs's to SOCI's byte for byte; then reads every file back through
// imgfs's with SOCI's reader (ztoc.Unmarshal and ExtractFile), which must
// give the tar's. The layers are small and large, with spans from one
// to many (a span size of 1 puts a checkpoint at every block boundary),
// in one gzip member or several (pigz), one of them a zlib-style stored
// member; their entries have names spelled "./etc/x" and "/etc//y",
// extended attributes, hard links, devices and a fifo.
func TestEncodeIdentical(t *testing.T) {
	small := oddTar(t, nil)
	large := oddTar(t, socitest.FixtureTar(2))
	if len(large) < 1<<20 {
		t.Fatalf("the large tar has %d bytes", len(large))
	}
	cut := len(large) / 3
	storedIn := func(n int) []byte {
		return bytes.Join([][]byte{
			layertest.Gzip(large[:cut], gzip.DefaultCompression),
			zlibStoredMember(large[cut : cut+n]),
			layertest.Gzip(large[cut+n:], gzip.BestSpeed),
		}, nil)
	}
	for _, tc := range []struct {
		name     string
		tar      []byte
		blob     []byte
		spanSize int64
		minSpans int
	}{
		{"small, SOCI's default span size", small, layertest.Gzip(small, gzip.DefaultCompression), 0, 1},
		{"small, span size 1", small, layertest.Gzip(small, gzip.BestCompression), 1, 1},
		{"large, SOCI's default span size", large, layertest.Gzip(large, gzip.DefaultCompression), 0, 1},
		{"large, 1 MiB spans", large, layertest.Gzip(large, gzip.BestSpeed), 1 << 20, 2},
		{"large, 64 KiB spans", large, layertest.Gzip(large, gzip.DefaultCompression), 64 << 10, 10},
		{"large, span size 1", large, layertest.Gzip(large, gzip.BestCompression), 1, 20},
		{"large, span size 1000", large, layertest.Gzip(large, gzip.BestSpeed), 1000, 20},
		{"four gzip members, span size 1", large, gzipMembers(large, 4), 1, 20},
		{"four gzip members, 64 KiB spans", large, gzipMembers(large, 4), 64 << 10, 10},
		{"zlib stored member, span size 1", large, storedIn(1000), 1, 20},
		{"zlib stored member, 40000-byte spans", large, storedIn(50000), 40000, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			soci, err := socitest.BuildZtoc(tc.blob, gzipLayer(tc.blob), socitest.Options{SpanSize: tc.spanSize})
			if err != nil {
				t.Fatal(err)
			}
			toc, err := ztoc.Build(bytes.NewReader(tc.blob), ztoc.BuildOptions{SpanSize: tc.spanSize, BuildTool: socitest.BuildTool})
			if err != nil {
				t.Fatal(err)
			}
			ours, err := ztoc.Encode(toc)
			if err != nil {
				t.Fatal(err)
			}
			if len(toc.Checkpoints) < tc.minSpans {
				t.Errorf("%d spans, want at least %d", len(toc.Checkpoints), tc.minSpans)
			}
			t.Logf("layer %d bytes (tar %d), zTOC %d bytes, %d spans", len(tc.blob), len(tc.tar), len(ours), len(toc.Checkpoints))
			if !bytes.Equal(ours, soci.Bytes) {
				t.Errorf("Encode wrote %d bytes, not SOCI's %d: %s", len(ours), len(soci.Bytes), firstDifference(ours, soci.Bytes))
			}
			got := socitest.ReadBackZtoc(t, ours, tc.blob)
			checkFilesRead(t, got, readTar(t, tc.tar).files())
		})
	}
}

// firstDifference says where two zTOCs first differ, with the bytes
// there (a mod_time in another zone shows as text), and whether Parse
// refuses either.
func firstDifference(ours, soci []byte) string {
	i := 0
	for i < min(len(ours), len(soci)) && ours[i] == soci[i] {
		i++
	}
	around := func(b []byte) []byte { return b[max(i-8, 0):min(i+40, len(b))] }
	msg := fmt.Sprintf("first at byte %d: ours %q, SOCI's %q", i, around(ours), around(soci))
	for _, z := range []struct {
		whose string
		b     []byte
	}{{"ours", ours}, {"SOCI's", soci}} {
		if _, err := ztoc.Parse(z.b, ztoc.Limits{}); err != nil {
			msg += fmt.Sprintf("; Parse refuses %s: %v", z.whose, err)
		}
	}
	return msg
}

// checkFilesRead compares the files SOCI's reader read with the tar's.
func checkFilesRead(t *testing.T, got, want map[string][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("SOCI read %d files, the tar has %d", len(got), len(want))
	}
	for name, w := range want {
		if g, ok := got[name]; !ok || !bytes.Equal(g, w) {
			t.Errorf("%s: SOCI read %d bytes (listed: %t), the tar has %d", name, len(g), ok, len(w))
		}
	}
}
