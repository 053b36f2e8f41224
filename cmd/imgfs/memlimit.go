package main

import (
	"os"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// The mount server's soft memory limit.
//
// A mount holds its layers' indexes and its file tree for as long as it is
// mounted: for a layer of a million entries about 290 MiB, all live. With
// the collector's default (GOGC=100) the heap grows to twice what the last
// collection found live before the next one, so the peak RSS of such a
// mount would be about twice its live memory, most of it garbage from the
// index pass. The server therefore sets a soft memory limit
// (runtime/debug.SetMemoryLimit): memoryFloor, or memoryHeadroom times the
// live heap when that is more, followed once a second. Below the floor,
// which a mount of an ordinary image does not reach, nothing changes; above
// it the collector runs as if GOGC were 25, which costs some CPU during an
// index pass of a huge layer. A GOMEMLIMIT in the environment is kept
// as it is.
const (
	memoryFloor    = 256 << 20
	memoryHeadroom = 1.25
	memoryPeriod   = time.Second
)

// limitMemory sets the mount server's soft memory limit and follows the
// live heap until stop is called; the limit set last stays.
func limitMemory() (stop func()) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	set := func() {
		metrics.Read(sample)
		limit := int64(memoryFloor)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			limit = max(limit, int64(float64(sample[0].Value.Uint64())*memoryHeadroom))
		}
		debug.SetMemoryLimit(limit)
	}
	set()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(memoryPeriod)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				set()
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}
