package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/imgfs/imgfs/fetch"
)

type fetchFlags struct {
	registryFlags
	cacheOptions
	allMetadata   bool
	metadataOnly  bool
	maxConcurrent int
	labels        []string
	quiet         bool
}

func newFetchCommand(g *globalFlags) *cobra.Command {
	f := &fetchFlags{}
	cmd := &cobra.Command{
		Use:   "fetch [flags] <ref>",
		Short: "Fetch an image's blobs into the cache, verified (like ctr content fetch)",
		Long: `Fetch resolves <ref> and stores its index, manifests, configs and the
selected platforms' layers in the cache, each verified against its digest.
Blobs already in the cache are not fetched again and show as "exists".`,
		Args:   exactArgs("ref"),
		PreRun: g.quietUnlessDebug,
		RunE:   func(cmd *cobra.Command, args []string) error { return runFetch(cmd, g, f, args[0]) },
	}
	f.registryFlags.register(cmd.Flags())
	f.cacheOptions.register(cmd.Flags())
	cmd.Flags().BoolVar(&f.allMetadata, "all-metadata", false, "fetch manifests and configs of every platform, layers of the selected ones only")
	cmd.Flags().BoolVar(&f.metadataOnly, "metadata-only", false, "fetch no layers")
	cmd.Flags().IntVar(&f.maxConcurrent, "max-concurrent-downloads", 3, "blobs fetched at once")
	cmd.Flags().StringArrayVar(&f.labels, "label", nil, "`key=value` annotation kept on the cache's index entry (repeatable)")
	cmd.Flags().BoolVarP(&f.quiet, "quiet", "q", false, "print nothing but errors")
	return cmd
}

func runFetch(cmd *cobra.Command, g *globalFlags, f *fetchFlags, refArg string) error {
	labels, err := parseLabels(f.labels)
	if err != nil {
		return err
	}
	ps, err := f.parsePlatforms()
	if err != nil {
		return err
	}
	if f.maxConcurrent < 1 {
		return usageError{fmt.Errorf("--max-concurrent-downloads must be at least 1, got %d", f.maxConcurrent)}
	}
	ref, remote, err := f.remote(g, refArg, f.fetchTimeout)
	if err != nil {
		return err
	}
	store, err := f.cacheOptions.openCapped(g)
	if err != nil {
		return err
	}
	defer store.Close()

	progress := newProgress(os.Stdout, f.quiet)
	ctx := cmd.Context()
	progress.Resolving(ref.String())
	root, data, err := remote.Resolve(ctx)
	if err != nil {
		progress.Finish(err)
		return err
	}
	progress.Resolved(ref.String(), root)
	_, err = fetch.Walk(ctx, store, fetch.Origin{Root: root, RootData: data, Fetcher: remote, Repository: ref.Name()}, fetch.WalkOptions{
		Platforms:     ps,
		AllPlatforms:  f.allPlatforms,
		AllMetadata:   f.allMetadata,
		MetadataOnly:  f.metadataOnly,
		MaxConcurrent: f.maxConcurrent,
		Progress:      progress,
	})
	if err == nil {
		err = store.SetRef(ref.String(), root, labels)
	}
	progress.Finish(err)
	return err
}

func parseLabels(labels []string) (map[string]string, error) {
	out := map[string]string{}
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return nil, usageError{fmt.Errorf("--label %q: want key=value", l)}
		}
		out[k] = v
	}
	return out, nil
}
