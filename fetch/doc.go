// Package fetch resolves image references and walks an image's descriptor
// tree through a chain of handlers, in the manner of containerd's
// core/images: one small Handler interface, behaviour added by wrapping, and
// Dispatch to walk the tree in parallel under a limiter.
//
// It owns references, the registry client and the handlers, and it is the
// edge where registry answers are checked: every digest, size and media
// type is validated (ValidateDescriptor) before anything uses it, the walk
// is bounded (MaxWalkDepth, MaxWalkDescriptors), and every response has an
// idle timeout (TransportOptions.IdleTimeout). It knows nothing of FUSE:
// the mount and `imgfs fetch` differ only in which handlers they chain.
// Media types live in the subpackage mediatype, which knows nothing of HTTP.
package fetch
