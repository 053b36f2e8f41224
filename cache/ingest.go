package cache

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache/internal/layout"
	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/errdefs"
	"github.com/imgfs/imgfs/internal/oci"
)

// Ingest streams a whole blob from r into the cache, verifying size and
// digest before an atomic, synced rename commits it. Nothing is left
// behind on failure. It suits small blobs and sources that cannot serve
// ranges.
func (s *Store) Ingest(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error {
	if err := layout.CheckBlob(desc.Digest, desc.Size); err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	target, _ := s.blobPath(desc.Digest)
	tmp, err := layout.CreateLockedTemp(filepath.Join(s.root, layout.Ingest), fmt.Sprintf("%s-%s.*.tmp", desc.Digest.Algorithm(), desc.Digest.Encoded()))
	if err != nil {
		return fmt.Errorf("ingest %s: %w", desc.Digest, err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	defer tmp.Close()

	verifier := desc.Digest.Algorithm().Hash()
	// Read one byte past the size so that an oversized body is caught.
	n, err := io.Copy(io.MultiWriter(tmp, verifier), io.LimitReader(blobio.ContextReader(ctx, r), desc.Size+1))
	if err != nil {
		return fmt.Errorf("ingest %s: %w", desc.Digest, err)
	}
	if n != desc.Size {
		return fmt.Errorf("ingest %s: %w: got %d bytes, want %d", desc.Digest, errdefs.ErrSizeMismatch, n, desc.Size)
	}
	if got := digest.NewDigest(desc.Digest.Algorithm(), verifier); got != desc.Digest {
		s.stats.digestMismatches.Add(1)
		return fmt.Errorf("ingest %s: %w: content hashes to %s", desc.Digest, errdefs.ErrDigestMismatch, got)
	}
	if err := s.hooks.syncFile(tmp); err != nil {
		return fmt.Errorf("ingest %s: %w", desc.Digest, err)
	}
	if err := tmp.Chmod(0o444); err != nil {
		return fmt.Errorf("ingest %s: %w", desc.Digest, err)
	}
	if err := s.hooks.renameFile(tmp.Name(), target); err != nil {
		return fmt.Errorf("commit %s: %w", desc.Digest, err)
	}
	if err := s.hooks.syncDir(filepath.Dir(target)); err != nil {
		return fmt.Errorf("commit %s: %w", desc.Digest, err)
	}
	s.stats.commits.Add(1)
	return nil
}

// ReadMetadata returns the bytes of a small complete blob, such as a
// manifest or config, refusing anything over oci.MaxMetadataSize.
func (s *Store) ReadMetadata(ctx context.Context, desc ocispec.Descriptor) ([]byte, error) {
	if err := layout.CheckBlob(desc.Digest, desc.Size); err != nil {
		return nil, fmt.Errorf("read metadata: %w", err)
	}
	if desc.Size > oci.MaxMetadataSize {
		return nil, fmt.Errorf("read %s: %w: %d bytes (limit %d)", desc.Digest, errdefs.ErrTooLarge, desc.Size, oci.MaxMetadataSize)
	}
	path, _ := s.blobPath(desc.Digest)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s from cache: %w", desc.Digest, unwrapPathError(err))
	}
	defer f.Close()
	// Never more than the limit, whatever the file has become.
	data, err := io.ReadAll(io.LimitReader(f, desc.Size+1))
	if err != nil {
		return nil, fmt.Errorf("read %s from cache: %w", desc.Digest, err)
	}
	if int64(len(data)) != desc.Size {
		return nil, fmt.Errorf("read %s from cache: %w", desc.Digest, errdefs.ErrSizeMismatch)
	}
	return data, nil
}

// countingReader reports bytes as they are read.
type countingReader struct {
	r        io.Reader
	progress func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.progress(int64(n))
	}
	return n, err
}
