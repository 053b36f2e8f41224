package cache

import ocispec "github.com/opencontainers/image-spec/specs-go/v1"

// BlobProgress says how much of desc the cache holds: "complete", or
// "partial" with the bytes present (those of an open blob as this process
// sees them, else what the saved state claims), or "absent".
func (s *Store) BlobProgress(desc ocispec.Descriptor) (state string, present int64) {
	if s.Exists(desc) {
		return "complete", desc.Size
	}
	s.mu.Lock()
	b, open := s.blobs[blobKey{desc.Digest, desc.Size}]
	s.mu.Unlock()
	if open {
		b.mu.Lock()
		present = b.m.PresentBytes()
		b.mu.Unlock()
	} else if path, err := s.ingestPath(desc.Digest, desc.Size, ".state"); err == nil {
		present = partialPresent(path, desc.Size)
	}
	if present == 0 && !open {
		return "absent", 0
	}
	return "partial", present
}
