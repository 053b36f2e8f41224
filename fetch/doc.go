// Package fetch resolves image references and walks an image's descriptor
// tree through a chain of handlers, in the manner of containerd's
// core/images: one small Handler interface, behaviour added by wrapping, and
// Dispatch to walk the tree in parallel under a limiter.
//
// It owns references, the registry client and the handlers. It knows nothing
// of FUSE: the mount and `imgfs fetch` differ only in which handlers they
// chain.
package fetch
