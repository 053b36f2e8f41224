package testregistry

import (
	"encoding/binary"
	"io"
	"math/rand/v2"
)

// RandomBytes returns a reader of exactly n deterministic, incompressible
// bytes derived from seed. The same seed always yields the same stream, so
// layer digests of the fixtures are stable across runs and machines, and the
// content defeats compression so that byte counts measured on the wire equal
// the sizes the tests expect.
func RandomBytes(seed int64, n int64) io.Reader {
	// ChaCha8 is a fixed, documented algorithm (unlike the default source),
	// and it generates gigabytes per second, so a 512 MiB benchmark layer
	// costs well under a second to produce.
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:8], uint64(seed))
	copy(key[8:], "imgfs/testregistry")
	return io.LimitReader(rand.NewChaCha8(key), n)
}
