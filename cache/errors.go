package cache

import "errors"

var (
	// ErrDigestMismatch means fetched bytes did not hash to the blob's
	// digest. Nothing was committed and the bytes were dropped.
	ErrDigestMismatch = errors.New("digest mismatch")

	// ErrSizeMismatch means a fetch returned more or fewer bytes than the
	// descriptor's size. Nothing was committed.
	ErrSizeMismatch = errors.New("size mismatch")

	// ErrTooLarge means a metadata blob exceeds the size callers allow.
	ErrTooLarge = errors.New("blob too large")

	// ErrInvalidDigest means a digest is malformed or of an algorithm the
	// cache does not support. No path is ever built from such a digest.
	ErrInvalidDigest = errors.New("invalid digest")

	// ErrOffline means the bytes are not cached and there is no fetcher.
	ErrOffline = errors.New("not in cache and offline")

	// ErrRangeUnsupported is returned by a Fetcher whose source cannot
	// serve byte ranges; whole-blob fills then fall back to one streamed
	// fetch.
	ErrRangeUnsupported = errors.New("range requests not supported")

	// ErrFetchTimeout means missing bytes, or the verdict on a blob's
	// digest, made no progress within the fetch timeout.
	ErrFetchTimeout = errors.New("fetch timed out")

	// ErrPermanent marks a fetch error that retrying soon cannot fix (401,
	// 403, 404, 416, a wrong Content-Range). A Fetcher wraps it; the cache
	// then fails reads and fills of that blob at once for
	// PermanentErrorWindow instead of retrying.
	ErrPermanent = errors.New("permanent fetch error")

	// ErrClosed means the store is closing and starts no new work.
	ErrClosed = errors.New("cache closed")
)
