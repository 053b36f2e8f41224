package blobfsm

import (
	"time"
)

// How long a blob fails fast after a failure.
const (
	// PermanentErrorWindow is how long reads and fills of a blob fail at
	// once after a permanent fetch error, and the longest they do after
	// mismatches in a row.
	PermanentErrorWindow = 30 * time.Second

	// firstMismatchBackoff is how long reads and fills of a blob fail at
	// once after its first mismatch. It outlasts the kernel's readahead
	// READs that were already queued behind the read that failed, so one
	// reader of a corrupt blob costs one fetch of it, not one per READ.
	firstMismatchBackoff = time.Second
)

// MismatchBackoff returns how long a blob fails fast after its nth
// mismatch in a row: firstMismatchBackoff, doubling with each further
// mismatch, at most PermanentErrorWindow. A source that keeps lying is
// asked less and less often; one that recovers is asked again soon.
func MismatchBackoff(n int) time.Duration {
	return min(firstMismatchBackoff<<min(n-1, 8), PermanentErrorWindow)
}

// FailFast returns the error that reads and fills needing more than what
// is present get at once, if the blob is in a failure window.
func (m *Machine) FailFast(now time.Time) error {
	if m.failErr != nil && now.Before(m.failUntil) {
		return m.failErr
	}
	return nil
}
