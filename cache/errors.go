package cache

import "errors"

// ErrClosed means the store is closing and starts no new work.
var ErrClosed = errors.New("cache closed")

// ErrBlobNotVerified means bytes were offered or served as a blob's that
// the cache never verified: a reader's, since dropped or set aside, or
// those a layer index (cache/artifacts) would be built from while the
// blob is not committed.
var ErrBlobNotVerified = errors.New("blob not verified in the cache")
