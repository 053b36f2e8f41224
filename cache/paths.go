package cache

import (
	"github.com/opencontainers/go-digest"

	"github.com/imgfs/imgfs/cache/internal/layout"
)

// The store's paths are the layout's (cache/internal/layout), under its
// root.

func (s *Store) blobPath(d digest.Digest) (string, error) { return layout.BlobPath(s.root, d) }

func (s *Store) sourcesPath(d digest.Digest) (string, error) { return layout.SourcesPath(s.root, d) }

func (s *Store) ingestPath(d digest.Digest, size int64, suffix string) (string, error) {
	return layout.IngestPath(s.root, d, size, suffix)
}
