// Package artifacts keeps the files imgfs derives from layers beside the
// blobs: stored layer indexes (indexes/), which let a later mount list a
// layer's files without reading it again, and copies of files read whole
// (files/), which the kernel serves by FUSE passthrough. Both are written
// only from verified bytes, durably, through the engine (package cache),
// and named by cache/internal/layout.
//
// It must not know when they may go: the store's Policy (cache/gc) is
// asked for room before a copy is written and told when one is opened or
// committed, and gc lists, prunes and evicts them with their layer. Nor
// does it know the index format (internal/layer) or FUSE.
package artifacts
