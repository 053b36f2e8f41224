package cache

import "sync/atomic"

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
