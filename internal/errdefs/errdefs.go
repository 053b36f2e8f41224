// Package errdefs holds the errors that cross package boundaries: the
// registry client returns them, the cache branches on them, and the
// command line turns them into hints. One home means errors.Is gives the
// same answer whichever package an error came from.
package errdefs

import "errors"

var (
	// ErrDigestMismatch means fetched bytes did not hash to the blob's
	// digest. Nothing was committed and the bytes were dropped.
	ErrDigestMismatch = errors.New("digest mismatch")

	// ErrSizeMismatch means a fetch returned more or fewer bytes than the
	// descriptor's size. Nothing was committed.
	ErrSizeMismatch = errors.New("size mismatch")

	// ErrTooLarge means a blob exceeds the size its reader allows, such as
	// a manifest over oci.MaxMetadataSize.
	ErrTooLarge = errors.New("blob too large")

	// ErrOffline means the bytes are not cached and there is no registry
	// to fetch them from.
	ErrOffline = errors.New("not in cache and offline")

	// ErrRangeUnsupported is returned by a source that cannot serve byte
	// ranges; whole-blob fills then fall back to one streamed fetch.
	ErrRangeUnsupported = errors.New("range requests not supported")

	// ErrFetchTimeout means missing bytes, or the verdict on a blob's
	// digest, made no progress within the fetch timeout.
	ErrFetchTimeout = errors.New("fetch timed out")

	// ErrPermanent marks a fetch error that retrying soon cannot fix (401,
	// 403, 404, 416, a wrong Content-Range). The registry client wraps it;
	// the cache then fails reads and fills of that blob at once for a
	// while instead of retrying.
	ErrPermanent = errors.New("permanent fetch error")
)
