package ztoc

import (
	"errors"
	"strings"
	"testing"
)

// fuzzWindow is the window size of the fuzz target's zinfo blobs: with
// SOCI's 32 KiB, almost every mutation would land in window bytes that
// parse copies and never looks at, and minimizing an input would take
// longer than a fuzz run.
const fuzzWindow = 4

// FuzzParse feeds parse, which has no recover, so that a panic a check
// misses fails the fuzzer instead of hiding in Parse's guard. Each input is
// read with SOCI's window size and with fuzzWindow. A zTOC it accepts must
// keep every promise TOC's doc makes.
//
// The seeds are small, since minimizing an interesting input takes time
// in proportion to its size: valid zTOCs (with fuzzWindow) of every entry
// type, one with two checkpoints at output 0, and broken ones: truncated, without a zinfo blob, or sharing one
// entry table.
func FuzzParse(f *testing.F) {
	valid := zspec{
		version: "0.9", buildTool: "fuzz", compressed: 50000, uncompressed: 5120,
		files: []zfile{
			{name: "./", typ: "dir", offset: 512, mode: 0o755, modTime: "2024-05-06T07:08:09.5Z"},
			{name: "a/b", typ: "reg", offset: 1024, size: 600, pax: [][2]string{{"SCHILY.xattr.user.k", "v"}, {"GNU.sparse.major", "1"}}},
			{name: "a/c", typ: "hardlink", offset: 2560, linkname: "./a/b"},
			{name: "a/d", typ: "char", offset: 3072, devmajor: 1, devminor: 3},
			{name: "a/e", typ: "symlink", offset: 3584, linkname: "../x"},
			{name: "a/f", typ: "fifo", offset: 4096},
		},
		maxSpanID: 2,
		digests:   []string{hexDigest('a'), hexDigest('b'), hexDigest('c')},
		zinfo:     zinfoBlobWindow(fuzzWindow, 1024, false, zcp{in: 10}, zcp{in: 20000, out: 2000, bits: 3}, zcp{in: 40000, out: 4000}),
	}
	v1 := valid
	v1.zinfo = zinfoBlobWindow(fuzzWindow, 1024, true, zcp{in: 10}, zcp{in: 20000, out: 2000, bits: 3}, zcp{in: 40000, out: 4000})
	// A stream that starts with an empty block: two checkpoints at 0.
	emptyStart := valid
	emptyStart.maxSpanID = 3
	emptyStart.digests = append(emptyStart.digests, hexDigest('d'))
	emptyStart.zinfo = zinfoBlobWindow(fuzzWindow, 1024, false, zcp{in: 10}, zcp{in: 12, bits: 6}, zcp{in: 20000, out: 2000, bits: 3}, zcp{in: 40000, out: 4000})
	for _, s := range []zspec{valid, v1, emptyStart} {
		if _, err := parse(s.encode(), Limits{}, fuzzWindow); err != nil {
			f.Fatalf("a valid seed: %v", err)
		}
		f.Add(s.encode())
	}
	noZinfo := valid
	noZinfo.zinfo = nil
	f.Add(noZinfo.encode())
	shared := valid
	shared.share = true
	f.Add(shared.encode())
	b := valid.encode()
	for _, n := range []int{0, 4, 64, len(b) / 2, len(b) - 1} {
		f.Add(b[:n])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, window := range []int{WindowSize, fuzzWindow} {
			toc, err := parse(data, Limits{}, window)
			if err != nil {
				if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnsupported) {
					t.Fatalf("error %q wraps neither sentinel", err)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Fatalf("error %q is not one line", err)
				}
				continue
			}
			checkTOC(t, toc, window)
		}
	})
}
