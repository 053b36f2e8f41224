// Package testregistry is the shared test and benchmark harness for imgfs.
//
// It starts a real registry process (Debian's docker-registry, CNCF
// distribution 2.8.2), builds container images deterministically from fixed
// seeds and pushes them over the registry's HTTP API, and puts a counting,
// fault-injecting reverse proxy in front of it. Nothing here is a mock: tests
// that pass against this harness talk HTTP to the same server a user would.
//
// The core API takes no testing.T so that the benchmark program under
// scripts/ can use it; the functions that do take a testing.TB are thin
// wrappers that tie lifetimes to the test and fail it on error.
//
// This package owns the registry process, the fixture images and the proxy.
// It must not know anything about imgfs's own cache, fetch or FUSE code: it
// is the yardstick those packages are measured against.
package testregistry
