package cache

import (
	"errors"
	"fmt"

	"github.com/imgfs/imgfs/cache/internal/blobfsm"
)

// ErrClosed means the store is closing and starts no new work.
var ErrClosed = errors.New("cache closed")

// ErrDirUnusable means there is no cache directory to use: the one given
// cannot be created, written or renamed in (Open), or none could be
// chosen (DefaultRoot). The errors that wrap it name the directory and
// the cause; how to choose another is the caller's to say, since the
// cache does not know how its directory was chosen.
var ErrDirUnusable = errors.New("cache directory is not usable")

// dirError is an ErrDirUnusable about dir ("" when none was chosen),
// caused by err.
type dirError struct {
	dir string
	err error
}

func (e *dirError) Error() string {
	if e.dir == "" {
		return fmt.Sprintf("no cache directory: %v", e.err)
	}
	return fmt.Sprintf("cache directory %s is not usable: %v", e.dir, e.err)
}

func (e *dirError) Unwrap() []error { return []error{ErrDirUnusable, e.err} }

// PermanentErrorWindow is how long reads and fills of a blob fail at once
// after a permanent fetch error, and the longest they do after digest
// mismatches in a row.
const PermanentErrorWindow = blobfsm.PermanentErrorWindow

// ErrBlobNotVerified means bytes were offered or served as a blob's that
// the cache never verified: a reader's, since dropped or set aside, or
// those a layer index (cache/artifacts) would be built from while the
// blob is not committed.
var ErrBlobNotVerified = errors.New("blob not verified in the cache")
