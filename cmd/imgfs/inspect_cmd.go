package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/fetch"
	"github.com/imgfs/imgfs/internal/imagemount"
	"github.com/imgfs/imgfs/internal/oci"
)

type inspectFlags struct {
	registryFlags
	cacheOptions
	json   bool
	index  string
	verify string
}

func newInspectCommand(g *globalFlags) *cobra.Command {
	f := &inspectFlags{}
	cmd := &cobra.Command{
		Use:   "inspect [flags] <ref>",
		Short: "Print an image's tree (index, manifests, configs, layers) without mounting it",
		Long: `Inspect resolves <ref> and prints its tree: the index, the manifests
with their platforms, and each manifest's config and layers, with digests,
sizes and media types. Platforms are selected as fetch and mount select
them; entries of an index that are not selected are listed but not
opened. Indexes, manifests and configs go into the cache, verified; no
layer bytes are fetched.

Each layer says which index a mount with the same --index and --verify
would read its files through, and its size: the layer's eStargz or
zstd:chunked TOC (its footer is read to size it), the cache's stored
index, a SOCI v2 index bound into the image, a SOCI v1 referrer, or none
(the mount indexes the layer with a pass).`,
		Args:   exactArgs("ref"),
		PreRun: g.quietUnlessDebug,
		RunE:   func(cmd *cobra.Command, args []string) error { return runInspect(cmd, g, f, args[0]) },
	}
	f.registryFlags.register(cmd.Flags())
	f.cacheOptions.register(cmd.Flags())
	cmd.Flags().BoolVar(&f.json, "json", false, "print the tree as JSON")
	cmd.Flags().StringVar(&f.index, "index", "auto", "plan layer indexes as imgfs mount --index would: `auto` or none")
	cmd.Flags().StringVar(&f.verify, "verify", "lazy", "plan layer indexes as imgfs mount --verify would: `lazy` or strict (no SOCI v1 referrers)")
	return cmd
}

// inspectNode is one descriptor of the printed tree. Selected is false for
// index entries the platform flags left out; their children are unknown.
type inspectNode struct {
	Kind        oci.Kind          `json:"kind"`
	MediaType   string            `json:"mediaType"`
	Digest      digest.Digest     `json:"digest"`
	Size        int64             `json:"size"`
	Platform    *ocispec.Platform `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Selected    bool              `json:"selected"`
	Children    []*inspectNode    `json:"children,omitempty"`
	URLs        []string          `json:"urls,omitempty"`
	// Index is, for a layer, the index a mount would list it through.
	Index *imagemount.IndexPlan `json:"index,omitempty"`
	desc  ocispec.Descriptor    // the descriptor as listed, for the walk
}

// inspectResult is what --json prints.
type inspectResult struct {
	Reference string       `json:"reference"`
	Root      *inspectNode `json:"root"`
}

func runInspect(cmd *cobra.Command, g *globalFlags, f *inspectFlags, refArg string) error {
	ps, err := f.parsePlatforms()
	if err != nil {
		return err
	}
	mode, err := imagemount.ParseIndexMode(f.index)
	if err != nil {
		return usageError{fmt.Errorf("--index: %w", err)}
	}
	verify, err := cache.ParseVerifyMode(f.verify)
	if err != nil {
		return usageError{fmt.Errorf("--verify: %w", err)}
	}
	ref, remote, err := f.remote(g, refArg, f.fetchTimeout)
	if err != nil {
		return err
	}
	store, _, err := g.openCache(f.cacheOptions.options())
	if err != nil {
		return err
	}
	defer store.Close()

	ctx := cmd.Context()
	root, data, err := remote.Resolve(ctx)
	if err != nil {
		return err
	}
	// Layers are recorded, not fetched: the tree needs only their
	// descriptors, which the manifests list.
	tree, err := fetch.Walk(ctx, store, fetch.Origin{Root: root, RootData: data, Fetcher: remote, Repository: ref.Name()}, fetch.WalkOptions{
		Platforms:     ps,
		AllPlatforms:  f.allPlatforms,
		Lazy:          []oci.Kind{oci.KindLayer},
		MaxConcurrent: 8,
	})
	if err != nil {
		return err
	}
	top, err := inspectTree(ctx, store, tree)
	if err != nil {
		return err
	}
	planIndexes(ctx, store, remote, root, top, mode, verify)
	out := cmd.OutOrStdout()
	if f.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(inspectResult{Reference: ref.String(), Root: top})
	}
	fmt.Fprintln(out, ref.String())
	printInspect(out, top, "", "")
	return nil
}

// inspectTree builds the printed tree from what the walk reached. An
// index lists every entry, selected or not; a manifest without a platform
// (the root, or an index entry without one) gets its config's.
func inspectTree(ctx context.Context, store *cache.Store, tree *fetch.Tree) (*inspectNode, error) {
	var build func(d ocispec.Descriptor, depth int) (*inspectNode, error)
	build = func(d ocispec.Descriptor, depth int) (*inspectNode, error) {
		n := newInspectNode(d, true)
		if depth > fetch.MaxWalkDepth || n.Kind == oci.KindLayer || n.Kind == oci.KindConfig {
			return n, nil
		}
		listed := tree.Children(d.Digest)
		reached := make(map[digest.Digest]bool, len(listed))
		for _, c := range listed {
			reached[c.Digest] = true
		}
		if n.Kind == oci.KindIndex {
			data, err := store.ReadMetadata(ctx, d)
			if err != nil {
				return nil, err
			}
			if listed, err = fetch.Children(d, data); err != nil {
				return nil, err
			}
		}
		for _, c := range listed {
			if !reached[c.Digest] {
				n.Children = append(n.Children, newInspectNode(c, false))
				continue
			}
			child, err := build(c, depth+1)
			if err != nil {
				return nil, err
			}
			n.Children = append(n.Children, child)
		}
		if n.Kind == oci.KindManifest && n.Platform == nil {
			n.Platform = configPlatform(ctx, store, n.Children)
		}
		return n, nil
	}
	return build(tree.Root, 0)
}

// planIndexes sets the index plan of every selected manifest's layers.
func planIndexes(ctx context.Context, store *cache.Store, remote *fetch.Remote, root ocispec.Descriptor, top *inspectNode, mode imagemount.IndexMode, verify cache.VerifyMode) {
	var manifests []imagemount.PlannedManifest
	var layers []*inspectNode
	var walk func(n *inspectNode)
	walk = func(n *inspectNode) {
		if !n.Selected {
			return
		}
		if n.Kind == oci.KindManifest {
			m := imagemount.PlannedManifest{Manifest: n.desc}
			for _, c := range n.Children {
				if c.Kind == oci.KindLayer {
					m.Layers = append(m.Layers, c.desc)
					layers = append(layers, c)
				}
			}
			manifests = append(manifests, m)
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(top)
	plans := imagemount.PlanIndexes(ctx, store, remote, root, manifests, mode, verify)
	for _, l := range layers {
		if p, ok := plans[l.Digest]; ok {
			l.Index = &p
		}
	}
}

// newInspectNode is the node for d as listed; selected is false for an
// index entry the walk did not reach.
func newInspectNode(d ocispec.Descriptor, selected bool) *inspectNode {
	return &inspectNode{Kind: oci.KindOf(d), MediaType: d.MediaType, Digest: d.Digest, Size: d.Size,
		Platform: d.Platform, Annotations: d.Annotations, URLs: d.URLs, Selected: selected, desc: d}
}

// configPlatform reads the platform from a manifest's config, if it is an
// image config that names one.
func configPlatform(ctx context.Context, store *cache.Store, children []*inspectNode) *ocispec.Platform {
	for _, c := range children {
		if c.Kind != oci.KindConfig {
			continue
		}
		data, err := store.ReadMetadata(ctx, c.desc)
		if err != nil {
			return nil
		}
		var config ocispec.Image
		if json.Unmarshal(data, &config) != nil || config.OS == "" {
			return nil
		}
		p := platforms.Normalize(ocispec.Platform{OS: config.OS, Architecture: config.Architecture, Variant: config.Variant})
		return &p
	}
	return nil
}

// printInspect prints n and its children as an indented tree, one
// descriptor a line: kind, digest, platform, media type, size.
func printInspect(w io.Writer, n *inspectNode, first, rest string) {
	line := []string{string(n.Kind), n.Digest.String()}
	if n.Platform != nil {
		line = append(line, platforms.Format(*n.Platform))
	}
	line = append(line, n.MediaType, sizeText(n.Size))
	if n.Annotations[attestationRefType] != "" {
		line = append(line, "("+n.Annotations[attestationRefType]+")")
	}
	if !n.Selected {
		line = append(line, "[not selected]")
	}
	if p := n.Index; p != nil {
		index := "index: " + p.Source
		if p.Size > 0 {
			index += " " + humanSize(float64(p.Size))
		}
		if p.Error != "" {
			index += " (" + p.Error + ")"
		}
		line = append(line, "["+index+"]")
	}
	fmt.Fprintln(w, first+strings.Join(line, "  "))
	for i, c := range n.Children {
		if i == len(n.Children)-1 {
			printInspect(w, c, rest+"└── ", rest+"    ")
		} else {
			printInspect(w, c, rest+"├── ", rest+"│   ")
		}
	}
}

// attestationRefType is the index entry annotation BuildKit puts on
// attestation manifests, worth showing because their platform says
// nothing.
const attestationRefType = "vnd.docker.reference.type"

// sizeText prints an exact byte count and, from 1 KiB, the rounded one
// fetch prints.
func sizeText(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%d B (%s)", n, humanSize(float64(n)))
}
