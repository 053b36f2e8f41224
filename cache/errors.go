package cache

import (
	"errors"

	"github.com/imgfs/imgfs/cache/internal/blobfsm"
)

// ErrClosed means the store is closing and starts no new work.
var ErrClosed = errors.New("cache closed")

// PermanentErrorWindow is how long reads and fills of a blob fail at once
// after a permanent fetch error, and the longest they do after digest
// mismatches in a row.
const PermanentErrorWindow = blobfsm.PermanentErrorWindow
