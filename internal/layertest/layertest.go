// Package layertest makes the bytes the layer format tests need: text
// that compresses like text, gzip streams, and tar blocks written by hand
// for what archive/tar refuses to write (hostile PAX records, GNU sparse
// records). It is for tests only.
package layertest

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// BlockSize is a tar block.
const BlockSize = 512

// Textish returns n deterministic bytes that compress like text.
func Textish(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	words := strings.Fields("the quick brown fox jumps over lazy dog lorem ipsum dolor sit amet layer image registry blob digest manifest index")
	var b bytes.Buffer
	for b.Len() < n {
		if r.IntN(50) == 0 {
			fmt.Fprintf(&b, "%x", r.Uint64())
		}
		b.WriteString(words[r.IntN(len(words))])
		b.WriteByte(" \n"[r.IntN(2)])
	}
	return b.Bytes()[:n]
}

// Gzip compresses b at level, one of compress/gzip's constants.
func Gzip(b []byte, level int) []byte {
	var out bytes.Buffer
	w, err := gzip.NewWriterLevel(&out, level)
	if err != nil {
		panic(err) // not one of the constants
	}
	w.Write(b)
	w.Close()
	return out.Bytes()
}

// RawHeader is one ustar header block of a file of mode 0644 owned by
// 0:0, written by hand.
func RawHeader(name string, flag byte, size int64, mtime time.Time) []byte {
	b := make([]byte, BlockSize)
	copy(b[0:100], name)
	copy(b[100:], "0000644\x00")
	copy(b[108:], "0000000\x00")
	copy(b[116:], "0000000\x00")
	copy(b[124:], fmt.Sprintf("%011o\x00", size))
	copy(b[136:], fmt.Sprintf("%011o\x00", mtime.Unix()))
	b[156] = flag
	copy(b[257:], "ustar\x0000")
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// PAXRecord is one PAX record, "<len> <key>=<value>\n", its length
// counting itself.
func PAXRecord(key, value string) []byte {
	rec := " " + key + "=" + value + "\n"
	n := len(rec) + 1
	for len(fmt.Sprint(n))+len(rec) != n {
		n++
	}
	return []byte(fmt.Sprint(n) + rec)
}

// Pad pads b with zeros to a whole number of tar blocks.
func Pad(b []byte) []byte {
	return append(b, make([]byte, (BlockSize-len(b)%BlockSize)%BlockSize)...)
}
