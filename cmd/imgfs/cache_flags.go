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
}

func (c *cacheOptions) register(fs *pflag.FlagSet) {
	fs.DurationVar(&c.fetchTimeout, "fetch-timeout", cache.DefaultFetchTimeout, "how long a read waits for missing bytes, and a registry response may send nothing, before failing (EIO in a mount)")
	fs.IntVar(&c.maxConnections, "max-connections", cache.DefaultMaxConnections, "range requests in flight at once")
}

func (c cacheOptions) options() cache.Options {
	return cache.Options{FetchTimeout: c.fetchTimeout, MaxConnections: c.maxConnections}
}
