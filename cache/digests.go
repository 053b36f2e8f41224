package cache

import (
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/opencontainers/go-digest"
)

// hexLengths are the algorithms the cache stores, with the length of
// their hex encoding. go-digest knows them because this file imports
// their hash packages.
var hexLengths = map[digest.Algorithm]int{
	digest.SHA256: sha256.Size * 2,
	digest.SHA512: sha512.Size * 2,
}

// maxQuoted bounds how much of a hostile value an error message repeats.
const maxQuoted = 160

// CheckDigest returns nil only for a well-formed digest of a supported
// algorithm (sha256 or sha512) with exactly the right number of lowercase
// hex digits. Its errors wrap ErrInvalidDigest and quote the value. Every
// path the cache builds from a digest is built only after this check.
func CheckDigest(d digest.Digest) error {
	s := string(d)
	alg, hex, ok := cutColon(s)
	if !ok {
		return fmt.Errorf("%w %s: want <algorithm>:<hex>", ErrInvalidDigest, quote(s))
	}
	want, ok := hexLengths[digest.Algorithm(alg)]
	if !ok {
		return fmt.Errorf("%w %s: algorithm %s is not supported (sha256, sha512)", ErrInvalidDigest, quote(s), quote(alg))
	}
	if len(hex) != want {
		return fmt.Errorf("%w %s: %s needs %d hex digits, got %d", ErrInvalidDigest, quote(s), alg, want, len(hex))
	}
	for i := 0; i < len(hex); i++ {
		if c := hex[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("%w %s: %q at %d is not a lowercase hex digit", ErrInvalidDigest, quote(s), c, i)
		}
	}
	return nil
}

func cutColon(s string) (before, after string, ok bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// quote quotes s for an error message, cut short if it is long.
func quote(s string) string {
	if len(s) > maxQuoted {
		return strconv.Quote(s[:maxQuoted]) + "..."
	}
	return strconv.Quote(s)
}

// checkDescriptor is CheckDigest plus the checks on a size the cache acts
// on.
func checkDescriptor(d digest.Digest, size int64) error {
	if err := CheckDigest(d); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("blob %s: negative size %d", d, size)
	}
	return nil
}

func (s *Store) blobPath(d digest.Digest) (string, error) {
	if err := CheckDigest(d); err != nil {
		return "", err
	}
	return filepath.Join(s.root, "blobs", d.Algorithm().String(), d.Encoded()), nil
}

func (s *Store) sourcesPath(d digest.Digest) (string, error) {
	if err := CheckDigest(d); err != nil {
		return "", err
	}
	return filepath.Join(s.root, "sources", d.Algorithm().String(), d.Encoded()), nil
}

// ingestPath names the files of a blob in progress. The size is part of
// the name so that two descriptors with one digest and different sizes
// never share a file.
func (s *Store) ingestPath(d digest.Digest, size int64, suffix string) (string, error) {
	if err := checkDescriptor(d, size); err != nil {
		return "", err
	}
	name := fmt.Sprintf("%s-%s-%d%s", d.Algorithm(), d.Encoded(), size, suffix)
	return filepath.Join(s.root, "ingest", name), nil
}
