package cache

import "sync/atomic"

// counters are the store's running totals, shown in each mount's stats
// file and used by tests that count what crossed the network.
type counters struct {
	fetchedBytes     atomic.Int64
	rangeRequests    atomic.Int64
	fetchErrors      atomic.Int64
	digestMismatches atomic.Int64
	commits          atomic.Int64
	readBytes        atomic.Int64
	reads            atomic.Int64
	readErrors       atomic.Int64
}

// Stats is a snapshot of a Store's counters.
type Stats struct {
	FetchedBytes     int64 `json:"fetched_bytes"`
	RangeRequests    int64 `json:"range_requests"`
	FetchErrors      int64 `json:"fetch_errors"`
	DigestMismatches int64 `json:"digest_mismatches"`
	Commits          int64 `json:"commits"`
	Reads            int64 `json:"reads"`
	ReadBytes        int64 `json:"read_bytes"`
	ReadErrors       int64 `json:"read_errors"`
	OpenBlobs        int   `json:"open_blobs"`
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	open := len(s.blobs)
	s.mu.Unlock()
	return Stats{
		FetchedBytes:     s.stats.fetchedBytes.Load(),
		RangeRequests:    s.stats.rangeRequests.Load(),
		FetchErrors:      s.stats.fetchErrors.Load(),
		DigestMismatches: s.stats.digestMismatches.Load(),
		Commits:          s.stats.commits.Load(),
		Reads:            s.stats.reads.Load(),
		ReadBytes:        s.stats.readBytes.Load(),
		ReadErrors:       s.stats.readErrors.Load(),
		OpenBlobs:        open,
	}
}
