package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"sync"
	"testing"
	"time"
)

// file is one tar entry to write in a test layer.
type file struct {
	name, link string
	flag       byte
	mode       int64
	body       string
	pax        map[string]string
	format     tar.Format
}

var epoch = time.Unix(1700000000, 0)

func mkTar(t testing.TB, files ...file) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Linkname: f.link, Typeflag: f.flag, Mode: f.mode, ModTime: epoch, PAXRecords: f.pax, Format: f.format}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0644
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(f.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("header %q: %v", f.name, err)
		}
		if _, err := tw.Write([]byte(f.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func dir(name string) file       { return file{name: name, flag: tar.TypeDir, mode: 0755} }
func reg(name, body string) file { return file{name: name, body: body} }
func symlink(name, to string) file {
	return file{name: name, link: to, flag: tar.TypeSymlink, mode: 0777}
}
func hardlink(name, to string) file { return file{name: name, link: to, flag: tar.TypeLink} }

func mustIndex(t testing.TB, files ...file) *Index {
	t.Helper()
	idx, err := BuildTar(bytes.NewReader(mkTar(t, files...)))
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// sourceOf serves b and records each range read.
type recordingSource struct {
	mu    sync.Mutex
	b     []byte
	reads [][2]int64
}

func (s *recordingSource) ReadAt(_ context.Context, p []byte, off int64) (int, error) {
	s.mu.Lock()
	s.reads = append(s.reads, [2]int64{off, int64(len(p))})
	s.mu.Unlock()
	if off >= int64(len(s.b)) {
		return 0, io.EOF
	}
	n := copy(p, s.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (s *recordingSource) total() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, r := range s.reads {
		n += r[1]
	}
	return n
}
