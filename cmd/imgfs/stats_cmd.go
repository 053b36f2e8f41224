package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/imgfs/imgfs/internal/imagemount"
)

// mountStats is the part of .imgfs/stats.json that imgfs stats shows.
type mountStats struct {
	FUSE struct {
		Opens            int64 `json:"opens"`
		PassthroughOpens int64 `json:"passthrough_opens"`
		Reads            int64 `json:"reads"`
		ReadBytes        int64 `json:"read_bytes"`
		ReadErrors       int64 `json:"read_errors"`
	} `json:"fusefs"`
	Cache struct {
		FetchedBytes     int64                   `json:"fetched_bytes"`
		RangeRequests    int64                   `json:"range_requests"`
		FetchErrors      int64                   `json:"fetch_errors"`
		DigestMismatches int64                   `json:"digest_mismatches"`
		Commits          int64                   `json:"commits"`
		OpenBlobs        int64                   `json:"open_blobs"`
		FetchRetries     int64                   `json:"fetch_retries"`
		CacheMaxSize     int64                   `json:"cache_max_size"`
		Evictions        int64                   `json:"evictions"`
		Blobs            []imagemount.BlobStats  `json:"blobs"`
		Views            []imagemount.LayerStats `json:"views"`
	} `json:"cache"`
}

func newStatsCommand(g *globalFlags) *cobra.Command {
	var (
		watch    bool
		interval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "stats <mountpoint> [--watch]",
		Short: "Show a mount's counters and, per blob, its size, share present, state and reads",
		Long: `Stats reads <mountpoint>/.imgfs/stats.json and prints it for people: the
mount's reads and opens, what it fetched, and a table of its blobs with
their size, the share of their bytes in the cache, their state and the
FUSE reads each has served (passthrough reads are the kernel's, and not
counted); then, for each layer whose files were looked at, where its file
index came from (its TOC, its tar headers, the cache's stored index, a
SOCI v2 or v1 index, or a pass), its state and, for a broken, failed or
refused layer, why. --watch prints it again every --interval until interrupted.`,
		Args:   exactArgs("mountpoint"),
		PreRun: g.quietUnlessDebug,
		RunE: func(cmd *cobra.Command, args []string) error {
			if interval <= 0 {
				return usageError{fmt.Errorf("--interval %s: want a positive duration", interval)}
			}
			path := filepath.Join(args[0], ".imgfs", "stats.json")
			for {
				st, err := readMountStats(path)
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				if watch {
					fmt.Fprint(out, "\033[H\033[2J") // clear the screen, as watch(1) does
				}
				printMountStats(out, args[0], st)
				if !watch {
					return nil
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(interval):
				}
			}
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "refresh until interrupted")
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "how often --watch refreshes")
	return cmd
}

// maxStatsSize bounds the stats file read: it lists one row per blob.
const maxStatsSize = 64 << 20

func readMountStats(path string) (mountStats, error) {
	var st mountStats
	f, err := os.Open(path)
	if err != nil {
		return st, fmt.Errorf("%s: %w (is an imgfs mount there?)", path, unwrapPath(err))
	}
	defer f.Close()
	if err := json.NewDecoder(io.LimitReader(f, maxStatsSize)).Decode(&st); err != nil {
		return st, fmt.Errorf("%s: %w", path, err)
	}
	return st, nil
}

func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func printMountStats(out io.Writer, mountpoint string, st mountStats) {
	c, f := st.Cache, st.FUSE
	fmt.Fprintf(out, "%s\n", mountpoint)
	fmt.Fprintf(out, "  served   %s in %d reads (%d errors); %d opens, %d by passthrough\n",
		formatSize(f.ReadBytes), f.Reads, f.ReadErrors, f.Opens, f.PassthroughOpens)
	fmt.Fprintf(out, "  fetched  %s in %d range requests; %d errors, %d retries, %d digest mismatches\n",
		formatSize(c.FetchedBytes), c.RangeRequests, c.FetchErrors, c.FetchRetries, c.DigestMismatches)
	limit := "none"
	if c.CacheMaxSize > 0 {
		limit = formatSize(c.CacheMaxSize)
	}
	fmt.Fprintf(out, "  cache    %d blobs open, %d committed, cap %s, %d evictions\n\n", c.OpenBlobs, c.Commits, limit, c.Evictions)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DIGEST\tTYPE\tSIZE\tPRESENT\tSTATE\tREADS\t")
	for _, b := range c.Blobs {
		pct := 100.0
		if b.Size > 0 {
			pct = float64(b.Present) * 100 / float64(b.Size)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f%%\t%s\t%d\t\n", shortDigest(b.Digest), shortMediaType(b.MediaType), formatSize(b.Size), pct, b.State, b.Reads)
	}
	tw.Flush()
	if len(c.Views) == 0 {
		return
	}
	fmt.Fprintln(out)
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LAYER\tFORMAT\tINDEX\tINDEX SIZE\tSTATE\t")
	for _, v := range c.Views {
		size := "-"
		if v.IndexBytes > 0 {
			size = formatSize(int64(v.IndexBytes))
		}
		source := v.Source
		if source == "" {
			source = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", shortDigest(v.Layer), v.Format, source, size, v.State)
	}
	tw.Flush()
	for _, v := range c.Views {
		if v.Error != "" {
			fmt.Fprintf(out, "  %s %s: %s\n", shortDigest(v.Layer), v.State, v.Error)
		}
	}
}

// shortMediaType names a blob's kind for the table.
func shortMediaType(mt string) string {
	switch {
	case mt == "":
		return "-"
	case containsAny(mt, "index", "manifest.list"):
		return "index"
	case containsAny(mt, "manifest"):
		return "manifest"
	case containsAny(mt, "config"):
		return "config"
	case containsAny(mt, "layer", "rootfs"):
		return "layer"
	}
	return mt
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
