package cache

import (
	"encoding/json"
	"os"
	"sync/atomic"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// counters are the store's running totals of fetching and verifying,
// shown in each mount's stats file. Reads are counted once, by the
// filesystem that serves them, and bytes once, by the mount that fetches
// them.
type counters struct {
	rangeRequests    atomic.Int64
	fetchErrors      atomic.Int64
	digestMismatches atomic.Int64
	commits          atomic.Int64
}

// Stats is a snapshot of a Store's counters.
type Stats struct {
	RangeRequests    int64 `json:"range_requests"`
	FetchErrors      int64 `json:"fetch_errors"`
	DigestMismatches int64 `json:"digest_mismatches"`
	Commits          int64 `json:"commits"`
	OpenBlobs        int   `json:"open_blobs"`
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	open := len(s.blobs)
	s.mu.Unlock()
	return Stats{
		RangeRequests:    s.stats.rangeRequests.Load(),
		FetchErrors:      s.stats.fetchErrors.Load(),
		DigestMismatches: s.stats.digestMismatches.Load(),
		Commits:          s.stats.commits.Load(),
		OpenBlobs:        open,
	}
}

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
	} else {
		present = s.SavedPresent(desc)
	}
	if present == 0 && !open {
		return "absent", 0
	}
	return "partial", present
}

// SavedPresent is how many bytes of the partial blob desc its saved state
// claims present, 0 if it has none. It reads the state file alone, so
// housekeeping can size a partial without opening it; a blob open in a
// process may hold more than its state says yet.
func (s *Store) SavedPresent(desc ocispec.Descriptor) int64 {
	path, err := s.ingestPath(desc.Digest, desc.Size, ".state")
	if err != nil {
		return 0
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	var st blobState
	if json.Unmarshal(data, &st) != nil || st.Size != desc.Size {
		return 0
	}
	var n int64
	for _, r := range st.Ranges {
		if 0 <= r[0] && r[0] < r[1] && r[1] <= desc.Size {
			n += r[1] - r[0]
		}
	}
	return min(n, desc.Size)
}
