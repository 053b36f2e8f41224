package main

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/imgfs/imgfs/cache"
)

// cacheOptions are the flags that tune lazy fetching.
type cacheOptions struct {
	fetchTimeout   time.Duration
	maxConnections int
	maxSize        string // --cache-max-size, parsed by maxSizeBytes (mount_ops.go)
}

func (c *cacheOptions) register(fs *pflag.FlagSet) {
	fs.DurationVar(&c.fetchTimeout, "fetch-timeout", cache.DefaultFetchTimeout, "how long a read waits for missing bytes, and a registry response may send nothing, before failing (EIO in a mount)")
	fs.IntVar(&c.maxConnections, "max-connections", cache.DefaultMaxConnections, "range requests in flight at once")
	fs.StringVar(&c.maxSize, "cache-max-size", "", "keep the cache's blobs, indexes and file copies under `SIZE` (500M, 10GiB) by evicting unused blobs and copies, least recently used first")
}

func (c cacheOptions) options() cache.Options {
	return cache.Options{FetchTimeout: c.fetchTimeout, MaxConnections: c.maxConnections}
}
