// Package blobfsm is the lifecycle of one blob being fetched into the
// cache, as a pure state machine in the manner of etcd's raft: which
// bytes are present, which run is fetching which chunk or, for reads
// through a layer index, which exact byte range (exact.go), how far the
// digest reaches, and the blob's Phase. Events go in as method calls
// (Want, Landed, FetchFailed, Hashed, Matched, Mismatched, Rejected,
// Committed, CommitFailed, Adopted, ...); what must happen next comes out
// as Actions: range requests to start, bytes to hash, a commit, a fresh
// file after a mismatch. So every transition is tested with tables, and
// without sleeps.
//
// It owns the rules: a byte is fetched only when it is neither present
// nor in flight, so a byte once landed is never written again in its
// generation; how reads through an index are coalesced (exact.go); a
// mismatch drops the generation; a source that fails or lies is backed
// off. It must not know how any of it is done: it opens no
// file, makes no request, starts no goroutine, takes no lock and reads no
// clock (the time comes in with the events that need it). Its imports are
// held to that by imports_test.go. The driver, cache.Blob, performs the
// actions and feeds their results back as events, under its own lock.
package blobfsm
