// Command imgfs mounts container images from OCI registries as lazy,
// read-only filesystems, and fetches them into a verified local cache.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"
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

// internalError is a panic caught at the command's edge. It is a last
// resort: every bad input must get its own error long before one. Panics in
// other goroutines, such as FUSE request handlers, are not caught here.
type internalError struct{ value any }

func (e internalError) Error() string {
	return fmt.Sprintf("internal error: %v (please report this)", e.value)
}

// execute runs the command and turns a panic in it into one line for the
// user, with the stack on standard error only with --debug.
func execute(ctx context.Context, root *cobra.Command, g *globalFlags) (err error) {
	defer func() {
		if v := recover(); v != nil {
			if g.debug {
				os.Stderr.Write(debug.Stack())
			}
			err = internalError{v}
		}
	}()
	return withHint(root.ExecuteContext(ctx))
}
