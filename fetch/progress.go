package fetch

import ocispec "github.com/opencontainers/image-spec/specs-go/v1"

// Status is where a descriptor stands, in ctr's words.
type Status string

// The statuses a descriptor goes through.
const (
	StatusResolving   Status = "resolving"
	StatusResolved    Status = "resolved"
	StatusWaiting     Status = "waiting"
	StatusDownloading Status = "downloading"
	StatusDone        Status = "done"
	StatusExists      Status = "exists"
	StatusFailed      Status = "failed"
)

// Progress hears what the fetch handler does. Implementations must be safe
// for concurrent use: Dispatch handles siblings in parallel.
type Progress interface {
	// Status reports a descriptor's new status.
	Status(desc ocispec.Descriptor, status Status)
	// Add reports n more bytes of desc stored.
	Add(desc ocispec.Descriptor, n int64)
}

// NoProgress discards progress.
type NoProgress struct{}

// Status does nothing.
func (NoProgress) Status(ocispec.Descriptor, Status) {}

// Add does nothing.
func (NoProgress) Add(ocispec.Descriptor, int64) {}
