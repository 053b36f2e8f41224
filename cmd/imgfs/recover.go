package main

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"
)

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
