package imagemount

import (
	"github.com/opencontainers/go-digest"

	"github.com/imgfs/imgfs/cache"
)

// Stats is the "cache" part of .imgfs/stats.json: the store's counters,
// what this mount fetched, the cap's figures, the file views' layers and
// the mount's blobs.
type Stats struct {
	cache.Stats
	FetchedBytes int64        `json:"fetched_bytes"`
	FetchRetries int64        `json:"fetch_retries"`
	CacheMaxSize int64        `json:"cache_max_size,omitempty"`
	Evictions    int64        `json:"evictions"`
	Views        []LayerStats `json:"views"`
	Blobs        []BlobStats  `json:"blobs"`
}

// BlobStats is one blob's row in .imgfs/stats.json.
type BlobStats struct {
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"media_type"`
	Size      int64         `json:"size"`
	State     string        `json:"state"`
	Present   int64         `json:"present"`
	Reads     int64         `json:"reads"`
}

// LayerStats is one layer's row in the file views' part of
// .imgfs/stats.json: how its index was made and how far the pass has come.
// State is "indexing", "ready", "failed" (tried again on the next look),
// "broken" (the layer's stream breaks before a clean end: its tree and
// rootfs/ answer EIO) or "refused" (served through a SOCI v1 zTOC that
// the verified layer contradicted: its files answer EIO); Error says why
// for the last three. Source is where the index came from: "toc",
// "headers", "stored", "soci-v2", "soci-v1" or "pass".
type LayerStats struct {
	Layer       digest.Digest `json:"layer"`
	Format      string        `json:"format"`
	State       string        `json:"state"`
	Error       string        `json:"error,omitempty"`
	Source      string        `json:"source,omitempty"`
	Size        int64         `json:"size"`
	IndexedRead int64         `json:"index_pass_bytes"`
	IndexBytes  int           `json:"index_bytes,omitempty"`
	FileCopies  int64         `json:"file_copies"`
}

// Stats returns the mount's part of .imgfs/stats.json.
func (m *Mount) Stats() Stats {
	s := Stats{Stats: m.store.Stats(), FetchedBytes: m.fetches.fetchedBytes.Load(), FetchRetries: m.fetches.retries.Load(),
		CacheMaxSize: m.hk.maxSize, Evictions: m.hk.lru.Evictions(), Views: m.files.stats(), Blobs: []BlobStats{}}
	for _, d := range m.img.Blobs {
		state, present := m.store.BlobProgress(d)
		var reads int64
		if n := m.hk.reads[d.Digest]; n != nil {
			reads = n.Load()
		}
		s.Blobs = append(s.Blobs, BlobStats{Digest: d.Digest, MediaType: d.MediaType, Size: d.Size, State: state, Present: present, Reads: reads})
	}
	return s
}

// stats is Stats for fusefs's ExtraStats.
func (m *Mount) stats() any { return m.Stats() }
