package cache

import (
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Blob is one blob being read, shared by every reader of it in the process.
// Until it is complete its bytes live in a sparse file under ingest/, with
// the set of present ranges beside it; fetched chunks are hashed in order as
// they arrive, and once the last one is in and the digest matches, the file
// is renamed into blobs/.
type Blob struct {
	store    *Store
	desc     ocispec.Descriptor
	dataPath string

	// stateMu orders saving the state file against commit, which
	// removes it.
	stateMu sync.Mutex

	mu         sync.Mutex
	file       *os.File // the sparse file, which becomes the committed blob in place
	users      int      // readers, fills and fetches holding the blob open
	fetcher    Fetcher
	present    RangeSet
	flights    map[int64]*flight // chunk index → fetch in progress
	complete   bool
	hashing    bool  // a hashLoop is running
	syncing    bool  // an early fsync was started for the fully present blob
	hashOff    int64 // bytes fed to hasher, always a prefix of present
	hasher     hash.Hash
	unhashed   map[int64]*[]byte // landed chunks' bytes by offset, kept for the hasher
	hashState  []byte            // hasher's marshalled state at hashOff, for persist
	mismatches int               // digest failures so far
	changed    chan struct{}     // closed and replaced on commit or mismatch
}

// flight is one chunk being fetched. done is closed when it lands or fails.
type flight struct {
	done chan struct{}
	err  error
	n    int64 // the chunk's length
}

// OpenBlob returns the shared Blob for desc, opening it if no one in this
// process has it open. f, if not nil, becomes the blob's source of missing
// bytes. Callers must Close the blob.
func (s *Store) OpenBlob(desc ocispec.Descriptor, f Fetcher) (*Blob, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("open blob %q: %w", desc.Digest, err)
	}
	if desc.Size < 0 {
		return nil, fmt.Errorf("open blob %s: negative size", desc.Digest)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.blobs[desc.Digest]; ok && b.desc.Size == desc.Size {
		b.mu.Lock()
		b.users++
		if f != nil {
			b.fetcher = f
		}
		b.mu.Unlock()
		return b, nil
	}
	b, err := s.loadBlob(desc, f)
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", desc.Digest, err)
	}
	s.blobs[desc.Digest] = b
	return b, nil
}

func (s *Store) loadBlob(desc ocispec.Descriptor, f Fetcher) (*Blob, error) {
	b := &Blob{
		store:    s,
		desc:     desc,
		dataPath: s.ingestPath(desc.Digest, ".partial"),
		users:    1,
		fetcher:  f,
		flights:  make(map[int64]*flight),
		unhashed: make(map[int64]*[]byte),
		hasher:   desc.Digest.Algorithm().Hash(),
		changed:  make(chan struct{}),
	}
	if path, ok := s.CompletePath(desc); ok {
		file, err := os.Open(path)
		if err == nil {
			b.file, b.complete = file, true
			return b, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	file, err := os.OpenFile(b.dataPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	fi, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, err
	}
	if fi.Size() != desc.Size {
		// A fresh file, or leftovers of another size: start sparse and empty.
		if err := file.Truncate(desc.Size); err != nil {
			file.Close()
			return nil, err
		}
		os.Remove(s.ingestPath(desc.Digest, ".state"))
	} else {
		b.loadState()
	}
	b.file = file
	switch {
	case desc.Size == 0:
		b.commit()
	default:
		// Saved ranges may already hold the rest of the blob.
		b.startHashingLocked()
	}
	return b, nil
}

// Close releases the caller's hold on the blob. The last one out saves the
// present ranges and closes the file.
func (b *Blob) Close() error {
	s := b.store
	s.mu.Lock()
	b.mu.Lock()
	b.users--
	last := b.users == 0
	if last && s.blobs[b.desc.Digest] == b {
		delete(s.blobs, b.desc.Digest)
	}
	if last {
		for off, buf := range b.unhashed {
			chunkPool.Put(buf)
			delete(b.unhashed, off)
		}
	}
	b.mu.Unlock()
	s.mu.Unlock()
	if !last {
		return nil
	}
	b.saveState()
	return b.file.Close()
}

// hold takes another reference for a background fetch. The caller already
// holds one, so the blob cannot be closed meanwhile.
func (b *Blob) hold() {
	b.mu.Lock()
	b.users++
	b.mu.Unlock()
}

// Complete reports whether the blob is verified and committed.
func (b *Blob) Complete() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.complete
}

// chunkRange returns the bytes of chunk c, the last one cut at the size.
func (b *Blob) chunkRange(c int64) Range {
	cs := b.store.opts.ChunkSize
	return Range{c * cs, min((c+1)*cs, b.desc.Size)}
}

// notifyLocked wakes everyone waiting for a commit or a mismatch.
func (b *Blob) notifyLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// restoreHash resumes hashing from a persisted state, when it is valid.
func (b *Blob) restoreHash(state []byte, off int64) {
	u, ok := b.hasher.(encoding.BinaryUnmarshaler)
	if !ok || off <= 0 || off > b.present.PrefixEnd() || u.UnmarshalBinary(state) != nil {
		b.hasher.Reset()
		return
	}
	b.hashOff, b.hashState = off, state
}

func digestOf(alg digest.Algorithm, h hash.Hash) digest.Digest { return digest.NewDigest(alg, h) }
