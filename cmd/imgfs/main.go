// Command imgfs mounts container images from OCI registries as lazy,
// read-only filesystems, and fetches them into a verified local cache.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes, as ctr uses them.
const (
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	// SIGINT and SIGTERM cancel the command's context, so a fetch stops
	// cleanly and removes what it had half written, and a mount unmounts.
	// The handler stays installed until the command returns, so a signal
	// never kills imgfs while it holds a mount.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	g := &globalFlags{}
	err := execute(ctx, newRootCommand(g), g)
	// stop cancels ctx as well: ask whether a signal did first.
	interrupted := ctx.Err() != nil
	stop()
	if err == nil {
		return
	}
	var internal internalError
	if interrupted && !errors.As(err, &internal) {
		err = fmt.Errorf("interrupted: %w", err)
	}
	fmt.Fprintf(os.Stderr, "imgfs: %v\n", err)
	var usage usageError
	if errors.As(err, &usage) {
		os.Exit(exitUsage)
	}
	os.Exit(exitFailure)
}

// usageError marks a mistake in how imgfs was called, which exits 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }
