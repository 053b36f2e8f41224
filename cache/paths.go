package cache

import (
	"fmt"
	"path/filepath"

	"github.com/opencontainers/go-digest"

	"github.com/imgfs/imgfs/internal/oci"
)

// checkBlob is oci.CheckDigest plus the check on a size the cache acts on.
func checkBlob(d digest.Digest, size int64) error {
	if err := oci.CheckDigest(d); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("blob %s: negative size %d", d, size)
	}
	return nil
}

func (s *Store) blobPath(d digest.Digest) (string, error) {
	if err := oci.CheckDigest(d); err != nil {
		return "", err
	}
	return filepath.Join(s.root, "blobs", d.Algorithm().String(), d.Encoded()), nil
}

func (s *Store) sourcesPath(d digest.Digest) (string, error) {
	if err := oci.CheckDigest(d); err != nil {
		return "", err
	}
	return filepath.Join(s.root, "sources", d.Algorithm().String(), d.Encoded()), nil
}

// ingestPath names the files of a blob in progress. The size is part of
// the name so that two descriptors with one digest and different sizes
// never share a file.
func (s *Store) ingestPath(d digest.Digest, size int64, suffix string) (string, error) {
	if err := checkBlob(d, size); err != nil {
		return "", err
	}
	name := fmt.Sprintf("%s-%s-%d%s", d.Algorithm(), d.Encoded(), size, suffix)
	return filepath.Join(s.root, "ingest", name), nil
}
