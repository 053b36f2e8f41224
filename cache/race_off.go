//go:build !race

package cache

// raceEnabled is set in builds with the race detector, which does not see
// accesses to memory mapped outside the Go heap.
const raceEnabled = false
