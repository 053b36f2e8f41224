// Package sociinterop holds imgfs's SOCI interop tests: zTOCs and SOCI
// indexes made by SOCI's own code (github.com/awslabs/soci-snapshotter
// v0.16.1, through package socitest) are held up against imgfs's zTOC
// parser (internal/layer/ztoc), its referrers client (fetch) and, in
// e2e_test.go, the imgfs binary; and the zTOCs imgfs publishes are read
// back with SOCI's own reader.
//
// It is a module of its own because SOCI needs cgo and zlib and brings
// containerd, and the referrers registry of the tests is
// go-containerregistry's: none of them may enter imgfs's go.mod. It
// imports imgfs's packages through a replace of the parent module.
package sociinterop
