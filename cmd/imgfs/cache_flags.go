package main

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/cache/gc"
)

// cacheOptions are the flags that tune lazy fetching.
type cacheOptions struct {
	fetchTimeout   time.Duration
	maxConnections int
	maxSize        string // --cache-max-size, parsed by maxSizeBytes
}

func (c *cacheOptions) register(fs *pflag.FlagSet) {
	fs.DurationVar(&c.fetchTimeout, "fetch-timeout", cache.DefaultFetchTimeout, "how long a read waits for missing bytes, and a registry response may send nothing, before failing (EIO in a mount)")
	fs.IntVar(&c.maxConnections, "max-connections", cache.DefaultMaxConnections, "range requests in flight at once")
	fs.StringVar(&c.maxSize, "cache-max-size", "", "keep the cache's blobs, indexes and file copies under `SIZE` (500M, 10GiB) by evicting unused blobs and copies, least recently used first")
}

func (c cacheOptions) options() cache.Options {
	return cache.Options{FetchTimeout: c.fetchTimeout, MaxConnections: c.maxConnections}
}

// openCapped opens the cache with these options and --cache-max-size set
// on its LRU policy, as fetch and index push fill it. The caller closes
// the store.
func (c cacheOptions) openCapped(g *globalFlags) (*cache.Store, error) {
	store, lru, err := g.openCache(c.options())
	if err != nil {
		return nil, err
	}
	if err := c.applyCap(lru); err != nil {
		store.Close()
		return nil, err
	}
	return store, nil
}

// applyCap sets --cache-max-size on the cache's LRU policy, for a fetch.
func (c cacheOptions) applyCap(lru *gc.LRU) error {
	n, err := c.maxSizeBytes()
	if err != nil || n == 0 {
		return err
	}
	lru.SetMaxSize(n, gc.CapOptions{})
	return nil
}

// maxSizeBytes parses --cache-max-size; 0 means no cap.
func (c cacheOptions) maxSizeBytes() (int64, error) {
	if c.maxSize == "" {
		return 0, nil
	}
	n, err := parseSize(c.maxSize)
	if err != nil {
		return 0, usageError{fmt.Errorf("--cache-max-size: %w", err)}
	}
	if n == 0 {
		return 0, usageError{fmt.Errorf("--cache-max-size 0: want a positive size, such as 10GiB")}
	}
	return n, nil
}
