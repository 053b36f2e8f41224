package inflate

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"math/rand/v2"
	"strings"
)

// textish and gz are the same as package layer's test helpers of those
// names, which this package's tests used when they were layer's.

// textish returns n deterministic bytes that compress like text.
func textish(seed uint64, n int) []byte {
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

// gz compresses b at level, one of compress/gzip's constants.
func gz(b []byte, level int) []byte {
	var out bytes.Buffer
	w, err := gzip.NewWriterLevel(&out, level)
	if err != nil {
		panic(err) // not one of the constants
	}
	w.Write(b)
	w.Close()
	return out.Bytes()
}
