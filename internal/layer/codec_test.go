package layer

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
)

func sampleIndex(t testing.TB) *Index {
	idx := mustIndex(t, dir("etc/"), reg("etc/a", "hello"), symlink("l", "/x"), hardlink("h", "etc/a"),
		file{name: "cap", body: "x", pax: map[string]string{"SCHILY.xattr.security.capability": "\x01\x02", "SCHILY.xattr.user.a": ""}},
		reg("../bad", ""))
	idx.Checkpoints = []Checkpoint{{In: 0, Out: 0, Member: true}, {In: 1000, Bits: 3, Out: 5000, Window: bytes.Repeat([]byte("w"), 100), SpanDigest: [32]byte{1, 2}}}
	idx.Err = "something"
	return idx
}

func TestIndexRoundTrip(t *testing.T) {
	idx := sampleIndex(t)
	b, err := idx.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalIndex(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, idx) {
		t.Errorf("round trip differs:\n%+v\n%+v", got, idx)
	}
	b2, _ := got.MarshalBinary()
	if !bytes.Equal(b, b2) {
		t.Error("serialization is not deterministic")
	}
}

func TestUnmarshalIndexRefuses(t *testing.T) {
	b, _ := sampleIndex(t).MarshalBinary()
	for name, in := range map[string][]byte{
		"empty":     nil,
		"magic":     append([]byte("nope"), b[4:]...),
		"version":   append(append([]byte(indexMagic), 99), b[len(indexMagic)+1:]...),
		"truncated": b[:len(b)-5],
	} {
		if _, err := UnmarshalIndex(in); !errors.Is(err, ErrIndexFormat) {
			t.Errorf("%s: err %v", name, err)
		}
	}
}

// TestFuzzSeedsExist checks the committed seeds; LAYERVIEW_WRITE_SEEDS=1
// rewrites them after a format change.
func TestFuzzSeedsExist(t *testing.T) {
	if os.Getenv("LAYERVIEW_WRITE_SEEDS") != "" {
		b, _ := sampleIndex(t).MarshalBinary()
		writeSeed(t, "FuzzUnmarshalIndex", "sample", "[]byte("+strconv.Quote(string(b))+")")
		writeSeed(t, "FuzzUnmarshalIndex", "empty-index", "[]byte("+strconv.Quote(string(must(new(Index).MarshalBinary())))+")")
		for i, s := range []string{"../../etc/passwd", "/a//b/./c/", "a/..", ".wh..wh..opq"} {
			writeSeed(t, "FuzzNormalizeName", strconv.Itoa(i), "string("+strconv.Quote(s)+")")
		}
	}
	for _, d := range []string{"FuzzUnmarshalIndex", "FuzzNormalizeName"} {
		if m, _ := filepath.Glob(filepath.Join("testdata", "fuzz", d, "*")); len(m) == 0 {
			t.Errorf("no seeds in testdata/fuzz/%s", d)
		}
	}
}

func writeSeed(t *testing.T, target, name, value string) {
	d := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, name), []byte("go test fuzz v1\n"+value+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func FuzzUnmarshalIndex(f *testing.F) {
	b, _ := sampleIndex(f).MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, in []byte) {
		idx, err := UnmarshalIndex(in)
		if err != nil {
			return
		}
		out, err := idx.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		again, err := UnmarshalIndex(out)
		if err != nil || !reflect.DeepEqual(again, idx) {
			t.Fatalf("re-encoding differs: %v", err)
		}
	})
}
