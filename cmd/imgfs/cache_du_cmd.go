package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/cache/gc"
)

func newCacheDuCommand(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "du [--json]",
		Short: "Show the cache's disk use: complete blobs, partial blobs, indexes, file copies and logs",
		Long: `Du adds up what the cache directory's files take on disk (allocated blocks,
as du(1) counts them: a partial blob takes only the chunks fetched), split
into complete blobs (blobs/), partial blobs with their state files (ingest/),
layer file indexes (indexes/), copies of view files read whole, served by
passthrough (files/), background mounts' logs (logs/), and the rest
(index.json, sources/, pins/). --cache-max-size bounds the first four.`,
		Args:   exactArgs(),
		PreRun: g.quietUnlessDebug,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withCache(func(store *cache.Store) error {
				u, err := gc.DiskUsage(store)
				if err != nil {
					return err
				}
				if asJSON {
					return json.NewEncoder(cmd.OutOrStdout()).Encode(u)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', tabwriter.AlignRight)
				for _, row := range []struct {
					name string
					n    int64
				}{{"complete", u.Complete}, {"partial", u.Partial}, {"indexes", u.Indexes}, {"file copies", u.Files}, {"logs", u.Logs}, {"other", u.Other}, {"total", u.Total}} {
					fmt.Fprintf(tw, "%s\t%s\t%d bytes\t\n", row.name, formatSize(row.n), row.n)
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON, in bytes")
	return cmd
}
