package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/cache/gc"
)

// newCacheCommand groups the commands that look after the cache directory.
func newCacheCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "Look after the cache directory",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageError{fmt.Errorf("cache needs a subcommand: ls, du, prune or verify (see %s --help)", cmd.CommandPath())}
		},
	}
	cmd.AddCommand(newCacheLsCommand(g), newCacheDuCommand(g), newCachePruneCommand(g), newCacheVerifyCommand(g))
	return cmd
}

func newCacheVerifyCommand(g *globalFlags) *cobra.Command {
	var repair bool
	cmd := &cobra.Command{
		Use:   "verify [--repair]",
		Short: "Re-hash every committed blob in the cache and report the bad ones",
		Long: `Verify reads every committed blob under blobs/ and checks it against its
digest and size. It prints one line per bad blob and a summary, and exits 1
if bad blobs remain. With --repair it removes them, so that the next fetch
or mount fetches them again.`,
		Args:   exactArgs(),
		PreRun: g.quietUnlessDebug,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withCache(func(store *cache.Store) error {
				out := cmd.OutOrStdout()
				sum, err := gc.Verify(cmd.Context(), store, repair, func(r gc.VerifyResult) {
					if r.Err != nil {
						fmt.Fprintf(out, "bad %s (%d bytes): %v\n", r.Digest, r.Size, r.Err)
					}
				})
				fmt.Fprintf(out, "checked %d blobs: %d bad, %d removed\n", sum.Checked, sum.Bad, sum.Removed)
				if err != nil {
					return err
				}
				if left := sum.Bad - sum.Removed; left > 0 {
					return errors.New(plural(left, "bad blob") + " left in the cache: run imgfs cache verify --repair")
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&repair, "repair", false, "remove the bad blobs, so that they are fetched again")
	return cmd
}

// plural returns "1 thing" or "n things".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	if stem, ok := strings.CutSuffix(thing, "y"); ok {
		return fmt.Sprintf("%d %sies", n, stem)
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
