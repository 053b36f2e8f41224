package main

import (
	"errors"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/containerd/platforms"
	"github.com/spf13/cobra"

	"github.com/imgfs/imgfs/fetch"
	"github.com/imgfs/imgfs/internal/indexpush"
)

func newIndexCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "index",
		Short: "Publish layer indexes in the registry, for lazy reads on the next machine",
		Args:  exactArgs(),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newIndexPushCommand(g))
	return cmd
}

type indexPushFlags struct {
	registryFlags
	cacheOptions
	minLayerSize string
	spanSize     string
	v2Tag        string
	quiet        bool
}

func newIndexPushCommand(g *globalFlags) *cobra.Command {
	f := &indexPushFlags{}
	cmd := &cobra.Command{
		Use:   "push [flags] <ref>",
		Short: "Build a SOCI zTOC of each gzip layer and push a SOCI index to the image's repository",
		Long: `Push builds a zTOC (SOCI's layer index) of every gzip layer of <ref> at
least --min-layer-size big, from the layer's bytes verified against its
digest (the cache's copy, else the registry's, stored in the cache on the
way), and pushes them to <ref>'s repository with a SOCI index per selected
platform: by default a v1 index, a referrer of the image manifest (through
the registry's referrers API, or the referrers tag where it has none);
with --v2-tag, a SOCI-enabled v2 image under that tag. imgfs and SOCI's
snapshotter then read the image's files lazily without a pass through its
layers. The SOCI indexes' digests are printed last, one a line.`,
		Args:   exactArgs("ref"),
		PreRun: g.quietUnlessDebug,
		RunE:   func(cmd *cobra.Command, args []string) error { return runIndexPush(cmd, g, f, args[0]) },
	}
	f.registryFlags.register(cmd.Flags())
	f.cacheOptions.register(cmd.Flags())
	cmd.Flags().StringVar(&f.minLayerSize, "min-layer-size", "10MiB", "layers under `SIZE` get no zTOC and are fetched whole (SOCI's default)")
	cmd.Flags().StringVar(&f.spanSize, "span-size", "4MiB", "uncompressed `SIZE` between two of a zTOC's checkpoints, 64KiB to 32MiB (SOCI's default)")
	cmd.Flags().StringVar(&f.v2Tag, "v2-tag", "", "push a SOCI-enabled v2 image under `TAG` instead of v1 referrers")
	cmd.Flags().BoolVarP(&f.quiet, "quiet", "q", false, "print only the SOCI indexes' digests")
	return cmd
}

// options turns the flags into indexpush's options, refusing values out
// of range.
func (f *indexPushFlags) options() (indexpush.Options, error) {
	var o indexpush.Options
	var err error
	if o.Platforms, err = f.parsePlatforms(); err != nil {
		return o, err
	}
	o.AllPlatforms = f.allPlatforms
	if o.MinLayerSize, err = parseSize(f.minLayerSize); err != nil {
		return o, usageError{fmt.Errorf("--min-layer-size: %w", err)}
	}
	if o.MinLayerSize == 0 {
		o.MinLayerSize = -1 // every gzip layer
	}
	if o.SpanSize, err = parseSize(f.spanSize); err != nil {
		return o, usageError{fmt.Errorf("--span-size: %w", err)}
	}
	if indexpush.CheckSpanSize(o.SpanSize) != nil {
		return o, usageError{fmt.Errorf("--span-size %s: want 64KiB to %dMiB (SOCI's default is 4MiB)", f.spanSize, indexpush.MaxSpanSize>>20)}
	}
	if f.v2Tag != "" {
		if err := fetch.CheckTag(f.v2Tag); err != nil {
			return o, usageError{fmt.Errorf("--v2-tag: %w", err)}
		}
	}
	o.V2Tag = f.v2Tag
	o.BuildTool = buildTool()
	return o, nil
}

func runIndexPush(cmd *cobra.Command, g *globalFlags, f *indexPushFlags, refArg string) error {
	opts, err := f.options()
	if err != nil {
		return err
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
	out := cmd.OutOrStdout()
	if f.quiet {
		opts.OnLayer = nil
	} else {
		opts.OnLayer = func(r indexpush.LayerReport) { printLayer(out, r) }
	}
	opts.Log = g.logger
	res, err := indexpush.Push(cmd.Context(), remote, store, opts)
	switch {
	case errors.Is(err, indexpush.ErrNoLayer):
		return hinted{err: err, hint: " (lower --min-layer-size to index smaller gzip layers)"}
	case errors.Is(err, indexpush.ErrResolve) && errors.Is(err, fetch.ErrNotFound):
		return hinted{err: err, hint: " (check the reference: index push indexes an image already in the registry)"}
	}
	if err != nil {
		return err
	}
	if !f.quiet {
		for _, p := range res.Indexes {
			printIndex(out, p)
		}
		if res.Tag != "" {
			fmt.Fprintf(out, "SOCI-enabled image index %s pushed as %s:%s\n", res.Image.Digest, ref.Name(), res.Tag)
		}
	}
	// The digests last, one a line, for scripts: the last line is a
	// digest and nothing else.
	for _, p := range res.Indexes {
		fmt.Fprintln(out, p.Index.Digest)
	}
	return nil
}

// printLayer prints one line for a layer: its zTOC, or why it has none.
func printLayer(w io.Writer, r indexpush.LayerReport) {
	head := fmt.Sprintf("%s layer %s %s:", platforms.Format(r.Platform), shortDigest(r.Layer.Digest), formatSize(r.Layer.Size))
	if r.Skipped != "" {
		fmt.Fprintf(w, "%s skipped: %s\n", head, r.Skipped)
		return
	}
	from := "registry"
	if r.Cached {
		from = "cache"
	}
	fmt.Fprintf(w, "%s zTOC %s %s, %d spans (layer read from the %s)\n", head, shortDigest(r.Ztoc.Digest), formatSize(r.Ztoc.Size), r.Spans, from)
}

// printIndex prints one line for a SOCI index pushed.
func printIndex(w io.Writer, p indexpush.Published) {
	head := fmt.Sprintf("%s: SOCI index %s %s, %d zTOC%s,", platforms.Format(p.Platform), p.Version, p.Index.Digest, p.Ztocs, map[bool]string{true: "s"}[p.Ztocs != 1])
	switch {
	case p.Manifest.Digest != p.Source.Digest:
		fmt.Fprintf(w, "%s for manifest %s (the SOCI-enabled copy of %s)\n", head, p.Manifest.Digest, p.Source.Digest)
	case p.ReferrersTag != "":
		fmt.Fprintf(w, "%s referrer of manifest %s, listed in the referrers tag %s\n", head, p.Manifest.Digest, p.ReferrersTag)
	default:
		fmt.Fprintf(w, "%s referrer of manifest %s, listed by the registry's referrers API\n", head, p.Manifest.Digest)
	}
}

// buildTool names imgfs and its version in the indexes it builds.
func buildTool() string {
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		return indexpush.DefaultBuildTool + " " + info.Main.Version
	}
	return indexpush.DefaultBuildTool
}
