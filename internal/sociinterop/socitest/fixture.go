package socitest

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/imgfs/imgfs/internal/layertest"
	"github.com/imgfs/imgfs/internal/testregistry"
)

// FixtureTime is the mtime of the fixture's entries.
var FixtureTime = time.Date(2023, 6, 1, 12, 0, 0, 123456789, time.UTC)

// Fixture files whose content the tests read by name.
const (
	// SmallFile is a 4 KiB text file near the start of the fixture.
	SmallFile = "etc/os-release"
	// LongName is a regular file whose name needs a PAX path record.
	LongName = "usr/share/long-directory-name-0/long-directory-name-1/long-directory-name-2/long-directory-name-3/file-with-a-long-name.txt"
)

// FixtureTar returns a deterministic tar of about 1.4 MiB holding every
// kind of entry a layer has: directories, regular files from empty to
// hundreds of KiB (text that compresses and random bytes that do not),
// symlinks (one to a directory, one with a target over 100 bytes),
// a hard link, a fifo, a character device, a setuid file with extended
// attributes (PAX SCHILY.xattr records, one binary), owners other than
// root, and names over 100 bytes. seed changes the files' content, not
// the entries.
func FixtureTar(seed uint64) []byte {
	text := func(n int, salt uint64) []byte { return layertest.Textish(seed*1000+salt, n) }
	random := func(n int64, salt int64) []byte {
		b, _ := io.ReadAll(testregistry.RandomBytes(int64(seed)*1000+salt, n))
		return b
	}
	cap := "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	longTarget := "../" + strings.Repeat("a-rather-long-directory/", 5) + "target"
	var hs []fixtureEntry
	add := func(h tar.Header, data []byte) { hs = append(hs, fixtureEntry{h, data}) }
	dir := func(name string, mode int64) {
		add(tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode}, nil)
	}
	file := func(name string, mode int64, data []byte) {
		add(tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode}, data)
	}
	dir("etc", 0o755)
	file(SmallFile, 0o644, osRelease(seed))
	file("etc/hostname", 0o644, []byte("imgfs\n"))
	file("etc/empty", 0o644, nil)
	add(tar.Header{Typeflag: tar.TypeReg, Name: "etc/shadow", Mode: 0o640, Gid: 42, Gname: "shadow"}, []byte("root:*:19000::::::\n"))
	dir("usr", 0o755)
	dir("usr/bin", 0o755)
	file("usr/bin/tool", 0o755, random(300<<10, 1))
	add(tar.Header{Typeflag: tar.TypeSymlink, Name: "usr/bin/sh", Linkname: "tool", Mode: 0o777}, nil)
	add(tar.Header{Typeflag: tar.TypeLink, Name: "usr/bin/tool2", Linkname: "usr/bin/tool"}, nil)
	add(tar.Header{Typeflag: tar.TypeReg, Name: "usr/bin/ping", Mode: 0o4755, PAXRecords: map[string]string{
		"SCHILY.xattr.security.capability": cap,
		"SCHILY.xattr.user.comment":        "pings",
	}}, []byte("ping\n"))
	dir("usr/lib", 0o755)
	file("usr/lib/libtext.so.1", 0o644, text(600<<10, 2))
	add(tar.Header{Typeflag: tar.TypeSymlink, Name: "lib", Linkname: "usr/lib", Mode: 0o777}, nil)
	add(tar.Header{Typeflag: tar.TypeSymlink, Name: "usr/lib/far", Linkname: longTarget, Mode: 0o777}, nil)
	dir("usr/share", 0o755)
	for i := range 4 {
		dir("usr/share"+longDirs(i), 0o755)
	}
	file(LongName, 0o644, text(3000, 3))
	dir("usr/share/small", 0o755)
	for i := range 40 {
		file(fmt.Sprintf("usr/share/small/f%02d", i), 0o644, text(1000+i*50, 100+uint64(i)))
	}
	dir("usr/share/doc", 0o755)
	file("usr/share/doc/README", 0o644, text(100<<10, 4))
	dir("home", 0o755)
	add(tar.Header{Typeflag: tar.TypeDir, Name: "home/user/", Mode: 0o700, Uid: 1000, Gid: 1000, Uname: "user", Gname: "user"}, nil)
	add(tar.Header{Typeflag: tar.TypeReg, Name: "home/user/notes", Mode: 0o600, Uid: 1000, Gid: 1000}, []byte("notes\n"))
	dir("dev", 0o755)
	add(tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3}, nil)
	dir("run", 0o755)
	add(tar.Header{Typeflag: tar.TypeFifo, Name: "run/initctl", Mode: 0o600}, nil)
	dir("var", 0o755)
	dir("var/lib", 0o755)
	file("var/lib/data.bin", 0o644, random(200<<10, 5))
	file("var/lib/last", 0o644, []byte("the last file\n"))

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range hs {
		h := e.h
		h.ModTime = FixtureTime
		h.Format = tar.FormatPAX
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(&h); err != nil {
			panic(fmt.Sprintf("fixture %s: %v", h.Name, err)) // the fixture is fixed: a bug here
		}
		if _, err := tw.Write(e.data); err != nil {
			panic(fmt.Sprintf("fixture %s: %v", h.Name, err))
		}
	}
	if err := tw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

type fixtureEntry struct {
	h    tar.Header
	data []byte
}

// longDirs returns the i+1 first directories of LongName under usr/share.
func longDirs(i int) string {
	var b strings.Builder
	for j := 0; j <= i; j++ {
		fmt.Fprintf(&b, "/long-directory-name-%d", j)
	}
	return b.String()
}

// osRelease is SmallFile's content: 4 KiB naming the seed.
func osRelease(seed uint64) []byte {
	s := fmt.Sprintf("NAME=\"imgfs sociinterop\"\nVERSION_ID=%d\n", seed)
	return []byte(s + strings.Repeat("#", 4096-len(s)-1) + "\n")
}
