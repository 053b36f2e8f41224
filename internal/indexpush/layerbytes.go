package indexpush

import (
	"context"
	"fmt"
	"hash"
	"io"
	"os"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/internal/blobio"
	"github.com/imgfs/imgfs/internal/errdefs"
)

// openLayer returns desc's bytes from the start, checked against its
// digest: the read that would end the blob returns an error instead of
// io.EOF when the bytes are not desc's. They come from the cache's
// complete copy when it has one (cached), else from fetcher, streamed in
// order through the cache (which fetches ahead, verifies and keeps them);
// either way they are hashed once more here, so that nothing but the
// digest's own bytes ends cleanly. For a stream, the cache reader is
// returned too, to wait for the blob's commit.
func openLayer(ctx context.Context, store *cache.Store, fetcher blobio.Fetcher, desc ocispec.Descriptor) (rd *verifier, stream *cache.Reader, err error) {
	if path, ok := store.CompletePath(desc); ok {
		f, err := os.Open(path)
		if err == nil {
			return newVerifier(f, f, desc), nil, nil
		}
		// Evicted since: fetch it.
	}
	r, err := store.NewStreamReader(desc, fetcher)
	if err != nil {
		return nil, nil, err
	}
	return newVerifier(&sequential{ctx: ctx, src: r}, r, desc), r, nil
}

// sequential reads a cache reader from its start. Its last read returns
// only once the cache has the blob's verdict.
type sequential struct {
	ctx context.Context
	src *cache.Reader
	off int64
}

func (s *sequential) Read(p []byte) (int, error) {
	n, err := s.src.ReadAt(s.ctx, p, s.off)
	s.off += int64(n)
	if n > 0 && err == io.EOF {
		err = nil
	}
	return n, err
}

// verifier hashes what it reads and, at the end of its source, checks
// size and digest before it returns io.EOF.
type verifier struct {
	src    io.Reader
	closer io.Closer
	desc   ocispec.Descriptor
	hash   hash.Hash
	n      int64
	err    error
}

func newVerifier(src io.Reader, closer io.Closer, desc ocispec.Descriptor) *verifier {
	return &verifier{src: src, closer: closer, desc: desc, hash: desc.Digest.Algorithm().Hash()}
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if rest := v.desc.Size - v.n; int64(len(p)) > rest {
		// One byte past the end tells a longer source.
		p = p[:rest+1]
	}
	n, err := v.src.Read(p)
	v.hash.Write(p[:n])
	v.n += int64(n)
	switch {
	case v.n > v.desc.Size:
		v.err = fmt.Errorf("layer %s: %w: more than its %d bytes", v.desc.Digest, errdefs.ErrSizeMismatch, v.desc.Size)
		return 0, v.err
	case err == io.EOF && v.n < v.desc.Size:
		v.err = fmt.Errorf("layer %s: %w: %d of its %d bytes", v.desc.Digest, errdefs.ErrSizeMismatch, v.n, v.desc.Size)
	case err == io.EOF:
		if got := digest.NewDigest(v.desc.Digest.Algorithm(), v.hash); got != v.desc.Digest {
			v.err = fmt.Errorf("layer %s: %w: its bytes hash to %s", v.desc.Digest, errdefs.ErrDigestMismatch, got)
		} else {
			v.err = io.EOF
		}
	case err != nil:
		v.err = fmt.Errorf("layer %s: %w", v.desc.Digest, err)
	}
	if v.err != nil && v.err != io.EOF {
		return 0, v.err
	}
	return n, v.err
}

// verified reads what is left of the source, and reports whether it
// ended on the blob's own bytes.
func (v *verifier) verified() error {
	_, err := io.Copy(io.Discard, v)
	return err
}

func (v *verifier) Close() error { return v.closer.Close() }
