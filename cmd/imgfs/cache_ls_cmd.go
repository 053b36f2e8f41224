package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/cache/gc"
)

func newCacheLsCommand(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls [--json]",
		Short: "List the cached references, then the blobs with their size, state, last use and references, then file copies",
		Long: `Ls lists the references in the cache's index.json, then every blob, complete
or partial: its size, its state (complete, or partial with the share of its
bytes present), whether a layer file index is stored for it, how many of its
files are copied for passthrough (files/) and their size on disk, when it was
last used, and which references reach it. Then, by layer, the file copies,
with the state of their layer's blob (gone once evicted: copies outlive it).
Last use is recorded at most once an hour per blob or copy, so it is right to
within the hour.`,
		Args:   exactArgs(),
		PreRun: g.quietUnlessDebug,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withCache(func(store *cache.Store) error {
				inv, err := gc.TakeInventory(store)
				if err != nil {
					return err
				}
				sort.SliceStable(inv.Blobs, func(i, j int) bool { return inv.Blobs[i].LastUse.After(inv.Blobs[j].LastUse) })
				if asJSON {
					enc := json.NewEncoder(cmd.OutOrStdout())
					enc.SetIndent("", "  ")
					return enc.Encode(inv)
				}
				printInventory(cmd.OutOrStdout(), inv)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON, with full digests and sizes in bytes")
	return cmd
}

func printInventory(out io.Writer, inv gc.Inventory) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REFERENCE\tDIGEST\tBLOBS\t")
	for _, r := range inv.Refs {
		note := ""
		if r.Missing {
			note = " (root not cached)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d%s\t\n", r.Name, shortDigest(r.Target.Digest), len(r.Blobs), note)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "DIGEST\tSIZE\tSTATE\tINDEX\tFILE COPIES\tLAST USE\tREFERENCES\t")
	for _, b := range inv.Blobs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", shortDigest(b.Digest), formatSize(b.Size), blobState(b),
			yesNo(b.Indexed), copiesCell(b.FileCopies, b.FileCopyBytes), b.LastUse.Local().Format(time.DateTime), refList(b.Refs))
	}
	if len(inv.FileCopies) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "LAYER\tFILE COPIES\tBLOB\tLAST USE\tREFERENCES\t")
		for _, c := range inv.FileCopies {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", shortDigest(c.Layer), copiesCell(c.Copies, c.DiskBytes), c.Blob,
				c.LastUse.Local().Format(time.DateTime), refList(c.Refs))
		}
	}
	tw.Flush()
}

// copiesCell is how many file copies and their bytes on disk, or "-".
func copiesCell(n int, bytes int64) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%d (%s)", n, formatSize(bytes))
}

func blobState(b gc.BlobInfo) string {
	if b.State == "complete" {
		return "complete"
	}
	pct := 100.0
	if b.Size > 0 {
		pct = float64(b.Present) * 100 / float64(b.Size)
	}
	s := fmt.Sprintf("partial %.0f%%", pct)
	if b.InUse {
		s += " (in use)"
	}
	return s
}

// shortDigest is the algorithm and 12 hex digits, as docker images shows.
func shortDigest(d digest.Digest) string {
	s := string(d)
	if alg, hex, ok := strings.Cut(s, ":"); ok && len(hex) > 12 {
		return alg + ":" + hex[:12]
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func refList(refs []string) string {
	if len(refs) == 0 {
		return "-"
	}
	return strings.Join(refs, ", ")
}
