package imagemount

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/imgfs/imgfs/cache/gc"
)

// collector reads the cache's, the filesystem's and the mount's own
// counters at scrape time, so serving metrics adds no bookkeeping to
// reads.
type collector struct{ m *Mount }

var (
	descFetched     = prometheus.NewDesc("imgfs_fetched_bytes_total", "Blob bytes received from registries.", nil, nil)
	descServed      = prometheus.NewDesc("imgfs_served_bytes_total", "Bytes served to readers by FUSE READs from the cache; passthrough reads are the kernel's and not counted.", nil, nil)
	descRanges      = prometheus.NewDesc("imgfs_range_requests_total", "Blob range requests sent.", nil, nil)
	descRetries     = prometheus.NewDesc("imgfs_fetch_retries_total", "Range requests for a blob whose previous request failed.", nil, nil)
	descMismatches  = prometheus.NewDesc("imgfs_digest_mismatches_total", "Blobs whose fetched bytes failed verification and were dropped.", nil, nil)
	descOpenBlobs   = prometheus.NewDesc("imgfs_open_blobs", "Blobs open in the cache by readers of this process.", nil, nil)
	descPassthrough = prometheus.NewDesc("imgfs_passthrough_opens_total", "Opens the kernel serves by FUSE passthrough from the cache file.", nil, nil)
	descOpens       = prometheus.NewDesc("imgfs_opens_total", "Opens of blobs through the mount.", nil, nil)
	descCacheSize   = prometheus.NewDesc("imgfs_cache_size_bytes", "Disk use of the cache directory, by part.", []string{"part"}, nil)
	descEvictions   = prometheus.NewDesc("imgfs_evictions_total", "Blobs evicted to keep the cache under its size cap.", nil, nil)
	descCommits     = prometheus.NewDesc("imgfs_commits_total", "Blobs verified and committed to the cache.", nil, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descFetched, descServed, descRanges, descRetries, descMismatches, descOpenBlobs,
		descPassthrough, descOpens, descCacheSize, descEvictions, descCommits} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	m := c.m
	st := m.store.Stats()
	counter(descFetched, float64(m.fetches.fetchedBytes.Load()))
	counter(descRanges, float64(m.fetches.rangeRequests.Load()))
	counter(descRetries, float64(m.fetches.retries.Load()))
	counter(descMismatches, float64(st.DigestMismatches))
	counter(descCommits, float64(st.Commits))
	counter(descEvictions, float64(m.hk.lru.Evictions()))
	ch <- prometheus.MustNewConstMetric(descOpenBlobs, prometheus.GaugeValue, float64(st.OpenBlobs))
	fs := m.server.Stats()
	counter(descServed, float64(fs.ReadBytes))
	counter(descPassthrough, float64(fs.PassthroughOpens))
	counter(descOpens, float64(fs.Opens))
	u, err := gc.DiskUsage(m.store)
	if err != nil {
		m.log.Warn("metrics: cannot measure the cache", "error", err)
		return
	}
	for part, n := range map[string]int64{"complete": u.Complete, "partial": u.Partial, "indexes": u.Indexes, "files": u.Files, "logs": u.Logs, "other": u.Other} {
		ch <- prometheus.MustNewConstMetric(descCacheSize, prometheus.GaugeValue, float64(n), part)
	}
}
