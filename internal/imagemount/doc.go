// Package imagemount mounts one image: it resolves the reference and walks the
// image's metadata into the cache through fetch's handler chain, builds
// what the filesystem shows (with OCI twins of Docker manifests), pins the
// image's blobs so that no prune removes them, applies the cache's size
// cap, opens the files inside layers from the best index each layer has,
// mounts FUSE, runs the background work (configs, prefetch) and reports
// what it did in .imgfs/stats.json and through Prometheus collectors.
//
// It owns every goroutine it starts: Close cancels them and waits.
// It knows nothing of flags, daemonizing, log files or progress bars,
// which are the command line's; nor of HTTP beyond fetch's client.
package imagemount
