package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/cache/gc"
)

// globalFlags apply to every command.
type globalFlags struct {
	cacheDir string
	debug    bool
	logger   *slog.Logger
	// logLevel is where logging starts without --debug. Commands whose
	// errors are all returned to the user log nothing below it.
	logLevel slog.Level
	log      logFlags // --log-format, --log-level (logging.go)
}

// newRootCommand returns the imgfs command, whose global flags land in g.
func newRootCommand(g *globalFlags) *cobra.Command {
	root := &cobra.Command{
		Use:           "imgfs",
		Short:         "Mount container images from a registry as lazy read-only filesystems",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) (err error) {
			g.logger, err = g.newLogger(os.Stderr)
			return err
		},
	}
	root.PersistentFlags().StringVar(&g.cacheDir, "cache-dir", "", "cache directory (default $IMGFS_CACHE_DIR, else $XDG_CACHE_HOME/imgfs, else ~/.cache/imgfs)")
	root.PersistentFlags().BoolVar(&g.debug, "debug", false, "log debug messages, including --http-trace timings")
	g.log.register(root.PersistentFlags())
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see %s --help)", err, cmd.CommandPath())}
	})
	root.AddCommand(newFetchCommand(g), newMountCommand(g), newUnmountCommand(g), newCacheCommand(g),
		newInspectCommand(g), newIndexCommand(g), newVersionCommand(), newCompletionCommand(), newStatsCommand(g))
	root.CompletionOptions.DisableDefaultCmd = true
	return root
}

// cacheRoot returns the cache directory the flags and environment select.
func (g *globalFlags) cacheRoot() (string, error) {
	if g.cacheDir != "" {
		return g.cacheDir, nil
	}
	return cache.DefaultRoot()
}

// openCache opens the cache directory the flags and environment select,
// with the LRU policy (cache/gc) that records last use, and enforces
// --cache-max-size once it is given one.
func (g *globalFlags) openCache(opts cache.Options) (*cache.Store, *gc.LRU, error) {
	dir, err := g.cacheRoot()
	if err != nil {
		return nil, nil, err
	}
	opts.Logger = g.logger
	store, err := cache.Open(dir, opts)
	if err != nil {
		return nil, nil, err
	}
	lru := gc.NewLRU(store)
	store.SetPolicy(lru)
	return store, lru, nil
}

// withCache opens the cache with default options, runs fn on it and
// closes it: the body of each cache subcommand.
func (g *globalFlags) withCache(fn func(*cache.Store) error) error {
	store, _, err := g.openCache(cache.Options{})
	if err != nil {
		return err
	}
	defer store.Close()
	return fn(store)
}

// exactArgs is cobra.ExactArgs with a message naming what is expected and
// the usage exit code.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return usageError{fmt.Errorf("%s takes %d argument(s): %v, got %d (see %s --help)", cmd.Name(), len(names), names, len(args), cmd.CommandPath())}
		}
		return nil
	}
}

// quietUnlessDebug is the PreRun of commands that return every failure as
// their one-line error, or print every finding: logging would only repeat
// it, so without --debug they log nothing.
func (g *globalFlags) quietUnlessDebug(*cobra.Command, []string) {
	if !g.debug {
		g.logger = slog.New(slog.DiscardHandler)
	}
}
