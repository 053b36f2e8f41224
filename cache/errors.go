package cache

import "errors"

var (
	// ErrDigestMismatch means fetched bytes did not hash to the blob's
	// digest. Nothing was committed.
	ErrDigestMismatch = errors.New("digest mismatch")

	// ErrSizeMismatch means a fetch returned more or fewer bytes than the
	// descriptor's size. Nothing was committed.
	ErrSizeMismatch = errors.New("size mismatch")

	// ErrTooLarge means a metadata blob exceeds the size callers allow.
	ErrTooLarge = errors.New("blob too large")

	// ErrOffline means the bytes are not cached and there is no fetcher.
	ErrOffline = errors.New("not in cache and offline")
)

// ErrRangeUnsupported is returned by a Fetcher whose source cannot serve
// byte ranges; whole-blob fills then fall back to one streamed fetch.
var ErrRangeUnsupported = errors.New("range requests not supported")

// ErrFetchTimeout means missing bytes did not arrive within the fetch
// timeout.
var ErrFetchTimeout = errors.New("fetch timed out")
