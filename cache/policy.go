package cache

import (
	"errors"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Policy is the housekeeping a Store defers to at the moments the cache
// is used or grows. The store knows when to ask, not what a cap is or
// what last use means: cache/gc's LRU records last use and keeps the
// cache under a size cap. Methods are called from any goroutine with none
// of the store's locks held; they must return promptly and do long work
// in the background (Store.Go).
//
// The store calls Opening and Committed. Packages that keep files beside
// the blobs (cache/artifacts) call Reserve and Opened through
// Store.Policy, and Committed through Store.CommitFile.
type Policy interface {
	// Opening is called as a reader opens the blob desc, before any of
	// its bytes are fetched for that reader.
	Opening(desc ocispec.Descriptor)
	// Committed is called once a blob, or a file beside the blobs, has
	// been renamed into place.
	Committed()
	// Reserve is called before a file of n bytes beside the blobs, such
	// as a file copy, is written. An error wrapping ErrOverCap refuses
	// the file.
	Reserve(n int64) error
	// Opened is called once the file at path, beside the blobs, has been
	// opened for reading.
	Opened(path string)
}

// ErrOverCap is what a Policy's Reserve returns, wrapped, when a file
// would not fit under the cache's size cap even after eviction.
var ErrOverCap = errors.New("no room under the cache's size cap")

// SetPolicy gives the store its housekeeping. Call it once, right after
// Open and before the store is shared; nil leaves the store with none.
func (s *Store) SetPolicy(p Policy) {
	if p == nil {
		p = noPolicy{}
	}
	s.policy = p
}

// Policy returns the store's housekeeping: what SetPolicy gave it, or a
// policy that records nothing and refuses nothing.
func (s *Store) Policy() Policy {
	if s.policy == nil {
		return noPolicy{}
	}
	return s.policy
}

// noPolicy is a store's housekeeping until SetPolicy: none.
type noPolicy struct{}

func (noPolicy) Opening(ocispec.Descriptor) {}
func (noPolicy) Committed()                 {}
func (noPolicy) Reserve(int64) error        { return nil }
func (noPolicy) Opened(string)              {}
