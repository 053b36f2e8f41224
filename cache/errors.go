package cache

import "errors"

// ErrClosed means the store is closing and starts no new work.
var ErrClosed = errors.New("cache closed")
