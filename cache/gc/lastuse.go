package gc

import (
	"os"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache"
)

// A blob's last use is its file's modification time: prune and eviction
// take the least recently used first. Reads never write it. An open sets
// it, at most once an hour per blob per process, so a busy blob costs one
// utimes(2) an hour and the order is right to within the hour. Writing a
// partial moves it too, and a commit's rename keeps the last write's time.
const lastUseResolution = time.Hour

// touched remembers when this process last set a blob's time, per cache
// directory and digest, and a file copy's, by path: the rule is per
// process and file, whatever the stores that open it. It grows with the
// blobs and copies a process opens, which the cache bounds anyway.
var touched sync.Map // lastUseKey or a copy's path → time.Time

type lastUseKey struct {
	root   string
	digest digest.Digest
}

// NoteUse records that desc was opened for reading now, unless this
// process did so within the hour. A blob the cache does not hold complete
// is skipped: its partial's time moves as it is written. The LRU policy
// calls it as a blob opens; a reader that opens the committed file itself
// (FUSE passthrough) calls it too.
func NoteUse(s *cache.Store, desc ocispec.Descriptor) {
	key := lastUseKey{s.Root(), desc.Digest}
	now := time.Now()
	if t, ok := touched.Load(key); ok && now.Sub(t.(time.Time)) < lastUseResolution {
		return
	}
	path, ok := s.CompletePath(desc)
	if !ok {
		return
	}
	touched.Store(key, now)
	// Best effort: a blob we cannot touch is only judged older than it is.
	_ = os.Chtimes(path, now, now)
}

// noteFileUse records that the file copy at path was opened now, with
// the same once-an-hour rule as NoteUse: a copy's last use is its mtime.
func noteFileUse(path string) {
	now := time.Now()
	if t, ok := touched.Load(path); ok && now.Sub(t.(time.Time)) < lastUseResolution {
		return
	}
	touched.Store(path, now)
	// Best effort, as for blobs.
	_ = os.Chtimes(path, now, now)
}
