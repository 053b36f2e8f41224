// Package gc keeps a cache directory in bounds. It owns the housekeeping
// on top of the engine (package cache): pins, which say what live mounts
// may read; last use; the LRU policy, which the engine is given
// (cache.Policy) and which keeps the cache under a size cap; prune, which
// plans what to remove and why, then removes it; and the inventory, disk
// usage and verification that cache ls, du and verify print.
//
// It must not know how a blob is fetched, verified as it lands, or read:
// it sees blobs only as files under the layout (cache/internal/layout),
// and learns from the engine only which blobs this process has open. Nor
// does it know CLI flags: its errors and reports say what failed, and the
// command adds the flag that would change it.
package gc
