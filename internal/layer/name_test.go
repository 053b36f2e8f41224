package layer

import (
	"errors"
	"testing"
)

func TestNormalizeName(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      error
	}{
		{"etc/passwd", "etc/passwd", nil},
		{"./etc/passwd", "etc/passwd", nil},
		{"/etc/passwd", "etc/passwd", nil},
		{"//etc//passwd", "etc/passwd", nil},
		{"etc/./passwd/", "etc/passwd", nil},
		{"etc/", "etc", nil},
		{"./", ".", nil},
		{"/", ".", nil},
		{".", ".", nil},
		{"a/..", ".", nil},
		{"a/b/../c", "a/c", nil},
		{"a/../../b", "", ErrEscapes},
		{"../etc/passwd", "", ErrEscapes},
		{"/../etc/passwd", "", ErrEscapes},
		{"./..", "", ErrEscapes},
		{"..", "", ErrEscapes},
		{"a/..b", "a/..b", nil},
		{"...", "...", nil},
		{"a\x00b", "", ErrNULInName},
		{"", "", ErrEmptyName},
		{string(make([]byte, 5000)), "", ErrNameTooBig},
	} {
		got, err := NormalizeName(tc.in)
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("NormalizeName(%q) = %q, %v; want %q, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func FuzzNormalizeName(f *testing.F) {
	for _, s := range []string{"a/b", "/a/../b", "../x", "./", "a//b/./c/", ".wh..wh..opq"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := NormalizeName(in)
		if err != nil {
			return
		}
		if got == "" || got[0] == '/' || (got != "." && got[len(got)-1] == '/') {
			t.Fatalf("%q -> %q: not clean", in, got)
		}
		if got != "." {
			for _, el := range splitAll(got) {
				if el == "" || el == "." || el == ".." {
					t.Fatalf("%q -> %q: element %q", in, got, el)
				}
			}
		}
		if again, err := NormalizeName(got); err != nil || again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, got, again, err)
		}
	})
}

func splitAll(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '/' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}
