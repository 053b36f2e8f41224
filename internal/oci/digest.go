package oci

import (
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
)

// ErrInvalidDigest means a digest is malformed or of an algorithm imgfs
// does not support. No path, URL or hash is ever built from such a digest.
var ErrInvalidDigest = errors.New("invalid digest")

// hexLengths are the algorithms imgfs accepts, with the length of their
// hex encoding. go-digest knows them because this file imports their hash
// packages.
var hexLengths = map[digest.Algorithm]int{
	digest.SHA256: sha256.Size * 2,
	digest.SHA512: sha512.Size * 2,
}

// CheckDigest returns nil only for a well-formed digest of a supported
// algorithm (sha256 or sha512) with exactly the right number of lowercase
// hex digits. Its errors wrap ErrInvalidDigest and quote the value. Every
// path built from a digest is built only after this check.
func CheckDigest(d digest.Digest) error {
	s := string(d)
	alg, hex, ok := strings.Cut(s, ":")
	if !ok {
		return fmt.Errorf("%w %s: want <algorithm>:<hex>", ErrInvalidDigest, Quote(s))
	}
	want, ok := hexLengths[digest.Algorithm(alg)]
	if !ok {
		return fmt.Errorf("%w %s: algorithm %s is not supported (sha256, sha512)", ErrInvalidDigest, Quote(s), Quote(alg))
	}
	if len(hex) != want {
		return fmt.Errorf("%w %s: %s needs %d hex digits, got %d", ErrInvalidDigest, Quote(s), alg, want, len(hex))
	}
	for i := 0; i < len(hex); i++ {
		if c := hex[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("%w %s: %q at %d is not a lowercase hex digit", ErrInvalidDigest, Quote(s), c, i)
		}
	}
	return nil
}

// Algorithms lists the digest algorithms CheckDigest accepts, in a fixed
// order.
func Algorithms() []digest.Algorithm { return []digest.Algorithm{digest.SHA256, digest.SHA512} }

// maxQuoted bounds how much of a hostile value an error message repeats.
const maxQuoted = 160

// Quote quotes s for an error message, cut short if it is long, so that
// the message stays on one line whatever s holds.
func Quote(s string) string {
	if len(s) > maxQuoted {
		return strconv.Quote(s[:maxQuoted]) + "..."
	}
	return strconv.Quote(s)
}

// QuoteDigest returns d as it is when it is a valid digest, and quoted
// when it is not.
func QuoteDigest(d digest.Digest) string {
	if CheckDigest(d) == nil {
		return d.String()
	}
	return Quote(string(d))
}
