// Package oci holds the words every other package shares about an image:
// media types and what role a descriptor plays (index, manifest, config,
// layer), layer formats and their file extensions, the checks a digest or
// a descriptor from the wire must pass before anything is built from it,
// the size limits, and the translation of Docker manifests into their OCI
// twins.
//
// It is pure: no I/O, no HTTP, no FUSE, no cache. The registry side and
// the filesystem side import it so that both apply the same rules.
package oci
