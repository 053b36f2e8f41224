package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/cache/gc"
)

func newCachePruneCommand(g *globalFlags) *cobra.Command {
	var (
		all, dryRun, asJSON bool
		maxSize             string
		olderThan           time.Duration
	)
	cmd := &cobra.Command{
		Use:   "prune [--all] [--max-size SIZE] [--older-than DURATION] [--dry-run]",
		Short: "Remove cached blobs and file copies, least recently used first, never one a live mount may read",
		Long: `Prune removes blobs and file copies from the cache and says what it freed. A
layer's file copies (files/) and file index (indexes/) are derived from it and
go with its blob. Without flags it removes only what nothing uses: blobs no
reference in index.json reaches, their indexes, file copies and sources/
records, file copies of evicted layers no reference reaches, references whose
root blob is gone, stale pins of dead mounts, and the logs of dead background
mounts beyond the newest five.

--max-size SIZE also removes complete and partial blobs and file copies,
least recently used first, until blobs, partials, indexes and file copies fit
in SIZE (500M, 10GiB: M is 10^6, Mi is 2^20). --older-than DURATION removes
the blobs and file copies last used longer ago (720h). Both leave the image
indexes and manifests that references walk through. --all removes every
blob, file copy and layer index, and every reference whose root goes with
them.

Nothing a live mount has pinned is ever removed, whatever its process: not
its blobs, nor their file copies and indexes; and no partial blob whose
writer is alive. A mount killed with kill -9 leaves a
pin no process holds; prune removes it, and its blobs are fair game.`,
		Args:   exactArgs(),
		PreRun: g.quietUnlessDebug,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := gc.PruneOptions{All: all, MaxSize: -1, OlderThan: olderThan}
			if maxSize != "" {
				n, err := parseSize(maxSize)
				if err != nil {
					return usageError{fmt.Errorf("--max-size: %w", err)}
				}
				opts.MaxSize = n
			}
			if olderThan < 0 {
				return usageError{fmt.Errorf("--older-than %s: want a positive duration such as 720h", olderThan)}
			}
			return g.withCache(func(store *cache.Store) error {
				plan, err := gc.PlanPrune(store, opts)
				if err != nil {
					return err
				}
				rep := plan.Report()
				if !dryRun {
					if rep, err = plan.Apply(); err != nil {
						return err
					}
				}
				rep = withFlagReasons(rep)
				if asJSON {
					enc := json.NewEncoder(cmd.OutOrStdout())
					enc.SetIndent("", "  ")
					return enc.Encode(rep)
				}
				printPruneReport(cmd, rep)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "remove every blob no live mount pins")
	cmd.Flags().StringVar(&maxSize, "max-size", "", "remove least recently used blobs until the cache fits in `SIZE`")
	cmd.Flags().DurationVar(&olderThan, "older-than", 0, "remove blobs last used longer ago than `DURATION`")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "say what would be removed, and remove nothing")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

// withFlagReasons words rep's reasons as the command's flags do: what gc
// removes as over its MaxSize went over --max-size.
func withFlagReasons(rep gc.PruneReport) gc.PruneReport {
	flag := func(reason string) string {
		if reason == gc.ReasonOverMaxSize {
			return "over --max-size"
		}
		return reason
	}
	for i := range rep.Blobs {
		rep.Blobs[i].Reason = flag(rep.Blobs[i].Reason)
	}
	for i := range rep.FileCopies {
		rep.FileCopies[i].Reason = flag(rep.FileCopies[i].Reason)
	}
	return rep
}

func printPruneReport(cmd *cobra.Command, rep gc.PruneReport) {
	out := cmd.OutOrStdout()
	verb, freed := "removed", "freed"
	if rep.DryRun {
		verb, freed = "would remove", "would free"
	}
	for _, b := range rep.Blobs {
		fmt.Fprintf(out, "%s %s %s %s (%s)\n", verb, b.State, b.Digest, formatSize(b.DiskBytes), b.Reason)
	}
	copies := 0
	for _, c := range rep.FileCopies {
		fmt.Fprintf(out, "%s %s of layer %s %s (%s)\n", verb, plural(c.Copies, "file copy"), c.Layer, formatSize(c.DiskBytes), c.Reason)
		copies += c.Copies
	}
	for _, r := range rep.Refs {
		fmt.Fprintf(out, "%s reference %s (its root blob is gone)\n", verb, r)
	}
	fmt.Fprintf(out, "%s %s (%d bytes): %s, %s, %s, %s, %s, %s, %s\n", freed, formatSize(rep.Freed), rep.Freed,
		plural(len(rep.Blobs), "blob"), plural(copies, "file copy"), plural(len(rep.Refs), "reference"), plural(rep.Indexes, "layer index file"),
		plural(rep.Sources, "source record"), plural(rep.StalePins, "stale pin"), plural(rep.Logs, "log"))
	if rep.KeptPinned > 0 || rep.KeptPinnedCopies > 0 || rep.KeptInUse > 0 {
		fmt.Fprintf(out, "kept %s and %s pinned by live mounts and %s being written\n", plural(rep.KeptPinned, "blob"),
			plural(rep.KeptPinnedCopies, "file copy"), plural(rep.KeptInUse, "partial blob"))
	}
}
