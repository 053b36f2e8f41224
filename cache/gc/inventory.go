package gc

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/cache/artifacts"
	"github.com/imgfs/imgfs/cache/internal/layout"
	"github.com/imgfs/imgfs/internal/oci"
)

// BlobInfo describes one blob the cache holds, complete or partial.
type BlobInfo struct {
	Digest digest.Digest `json:"digest"`
	Size   int64         `json:"size"`
	// State is "complete" or "partial".
	State string `json:"state"`
	// Present is how many of the blob's bytes are in the cache: all of a
	// complete blob, and for a partial what its saved state claims.
	Present int64 `json:"present"`
	// DiskBytes is what the blob's files take on disk.
	DiskBytes int64 `json:"disk_bytes"`
	// InUse says a live process holds a partial's writer lock.
	InUse bool `json:"in_use,omitempty"`
	// Indexed says a layer file index is stored for the blob.
	Indexed bool `json:"indexed"`
	// FileCopies and FileCopyBytes count the copies of the layer's files
	// under files/ and what they take on disk.
	FileCopies    int   `json:"file_copies"`
	FileCopyBytes int64 `json:"file_copy_bytes"`
	// LastUse is when a reader last opened the blob, recorded at most
	// once an hour (see NoteUse), or when it was last written.
	LastUse time.Time `json:"last_use"`
	// Refs are the references in index.json whose tree reaches the blob.
	Refs []string `json:"refs"`
	// Metadata says the blob is an index or manifest that a reference's
	// tree walks through.
	Metadata bool `json:"metadata,omitempty"`

	files []string // every file of the blob, for prune
}

// RefInfo is one reference in index.json.
type RefInfo struct {
	Name   string             `json:"name"`
	Target ocispec.Descriptor `json:"target"`
	// Missing says the reference's root blob is not in the cache.
	Missing bool `json:"missing,omitempty"`
	// Blobs are the digests its tree reaches that the cache holds.
	Blobs []digest.Digest `json:"blobs"`

	reached []digest.Digest // every digest its tree names, held or not
}

// Inventory is what the cache holds.
type Inventory struct {
	Refs  []RefInfo  `json:"refs"`
	Blobs []BlobInfo `json:"blobs"`
	// FileCopies are the view file copies by layer, whether or not the
	// layer's blob is still in the cache.
	FileCopies []LayerFileCopies `json:"file_copies"`

	copies []artifacts.StoredCopy // every copy, least recently used first, for prune
}

// maxWalkedDocument bounds an index or manifest the inventory parses, and
// maxWalkedNodes the descriptors it follows from one reference.
const (
	maxWalkedDocument = 4 << 20
	maxWalkedNodes    = 1 << 16
)

// TakeInventory lists the references and blobs in the cache, with which
// references reach each blob. It reads only the cache directory.
func TakeInventory(s *cache.Store) (Inventory, error) {
	var inv Inventory
	blobs, err := listBlobs(s)
	if err != nil {
		return inv, err
	}
	refs, err := s.Refs()
	if err != nil {
		return inv, err
	}
	byDigest := map[digest.Digest][]int{}
	for i, b := range blobs {
		byDigest[b.Digest] = append(byDigest[b.Digest], i)
	}
	inv.copies = artifacts.ListFileCopies(s)
	inv.FileCopies = groupFileCopies(inv.copies)
	copiesOf := map[digest.Digest][]int{}
	for i, g := range inv.FileCopies {
		copiesOf[g.Layer] = append(copiesOf[g.Layer], i)
	}
	for _, m := range refs {
		ref := RefInfo{Name: m.Annotations[ocispec.AnnotationRefName], Target: m}
		if oci.CheckDigest(m.Digest) != nil {
			ref.Missing = true
			inv.Refs = append(inv.Refs, ref)
			continue
		}
		reached, meta := reach(s, m)
		ref.reached = reached
		ref.Missing = !s.Exists(m)
		for _, d := range reached {
			for _, i := range copiesOf[d] {
				if !slices.Contains(inv.FileCopies[i].Refs, ref.Name) {
					inv.FileCopies[i].Refs = append(inv.FileCopies[i].Refs, ref.Name)
				}
			}
			idx, ok := byDigest[d]
			if !ok {
				continue
			}
			ref.Blobs = append(ref.Blobs, d)
			for _, i := range idx {
				if !slices.Contains(blobs[i].Refs, ref.Name) {
					blobs[i].Refs = append(blobs[i].Refs, ref.Name)
				}
				if meta[d] {
					blobs[i].Metadata = true
				}
			}
		}
		inv.Refs = append(inv.Refs, ref)
	}
	for i := range blobs {
		if blobs[i].Refs == nil {
			blobs[i].Refs = []string{}
		}
	}
	for gi := range inv.FileCopies {
		g := &inv.FileCopies[gi]
		for _, i := range byDigest[g.Layer] {
			if blobs[i].Size == g.LayerSize {
				blobs[i].FileCopies, blobs[i].FileCopyBytes = g.Copies, g.DiskBytes
				g.Blob = blobs[i].State
			}
		}
	}
	inv.Blobs = blobs
	return inv, nil
}

// reach walks the tree under root through the complete index and manifest
// blobs in the cache, and returns every digest it names (root included)
// and which of them are indexes or manifests.
func reach(s *cache.Store, root ocispec.Descriptor) ([]digest.Digest, map[digest.Digest]bool) {
	seen := map[digest.Digest]bool{}
	meta := map[digest.Digest]bool{}
	var out []digest.Digest
	queue := []ocispec.Descriptor{root}
	for len(queue) > 0 && len(seen) < maxWalkedNodes {
		desc := queue[0]
		queue = queue[1:]
		if oci.CheckDigest(desc.Digest) != nil || seen[desc.Digest] {
			continue
		}
		seen[desc.Digest] = true
		out = append(out, desc.Digest)
		if !isTreeDocument(desc.MediaType) {
			continue
		}
		meta[desc.Digest] = true
		queue = append(queue, children(s, desc)...)
	}
	return out, meta
}

// treeDocument is the part of an index or manifest that names children.
type treeDocument struct {
	Manifests []ocispec.Descriptor `json:"manifests"`
	Config    *ocispec.Descriptor  `json:"config"`
	Layers    []ocispec.Descriptor `json:"layers"`
	Blobs     []ocispec.Descriptor `json:"blobs"`
	Subject   *ocispec.Descriptor  `json:"subject"`
}

func children(s *cache.Store, desc ocispec.Descriptor) []ocispec.Descriptor {
	path, ok := s.CompletePath(desc)
	if !ok || desc.Size > maxWalkedDocument {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var doc treeDocument
	if json.NewDecoder(io.LimitReader(f, maxWalkedDocument)).Decode(&doc) != nil {
		return nil
	}
	out := append(doc.Manifests, doc.Layers...)
	out = append(out, doc.Blobs...)
	if doc.Config != nil {
		out = append(out, *doc.Config)
	}
	if doc.Subject != nil {
		out = append(out, *doc.Subject)
	}
	return out
}

// isTreeDocument reports whether a media type is an index or manifest,
// OCI or Docker, whose children the walk follows.
func isTreeDocument(mediaType string) bool {
	switch mediaType {
	case ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageManifest,
		"application/vnd.docker.distribution.manifest.list.v2+json",
		"application/vnd.docker.distribution.manifest.v2+json":
		return true
	}
	return false
}

// listBlobs lists the complete blobs under blobs/ and the partial ones
// under ingest/.
func listBlobs(s *cache.Store) ([]BlobInfo, error) {
	var out []BlobInfo
	indexed := indexedBlobs(s)
	for _, alg := range oci.Algorithms() {
		dir := filepath.Join(s.Root(), layout.Blobs, alg.String())
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			d := digest.NewDigestFromEncoded(alg, e.Name())
			if oci.CheckDigest(d) != nil || !e.Type().IsRegular() {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				continue
			}
			path := filepath.Join(dir, e.Name())
			out = append(out, BlobInfo{
				Digest: d, Size: fi.Size(), State: "complete", Present: fi.Size(),
				DiskBytes: layout.DiskBytes(fi), Indexed: indexed[layout.Stem(d, fi.Size())],
				LastUse: fi.ModTime(), files: []string{path},
			})
		}
	}
	partials, err := listPartials(s, indexed)
	return append(out, partials...), err
}

// listPartials lists the shared partials under ingest/, by the stems
// <alg>-<hex>-<size> of their .partial, .state and .lock files. Private
// partials (*.private.tmp) belong to a live process's open blob, or are
// swept at the next open.
func listPartials(s *cache.Store, indexed map[string]bool) ([]BlobInfo, error) {
	dir := filepath.Join(s.Root(), layout.Ingest)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	byStem := map[string]*BlobInfo{}
	var stems []string
	for _, e := range entries {
		name := e.Name()
		var stem string
		for _, suffix := range []string{".partial", ".state", ".lock"} {
			if st, ok := strings.CutSuffix(name, suffix); ok {
				stem = st
			}
		}
		d, size, ok := layout.ParseStem(stem)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		b := byStem[stem]
		if b == nil {
			b = &BlobInfo{Digest: d, Size: size, State: "partial", Indexed: indexed[stem]}
			byStem[stem] = b
			stems = append(stems, stem)
		}
		path := filepath.Join(dir, name)
		b.files = append(b.files, path)
		fi, err := e.Info()
		if err != nil {
			continue
		}
		b.DiskBytes += layout.DiskBytes(fi)
		if fi.ModTime().After(b.LastUse) {
			b.LastUse = fi.ModTime()
		}
	}
	out := make([]BlobInfo, 0, len(stems))
	for _, stem := range stems {
		b := byStem[stem]
		b.Present = s.SavedPresent(ocispec.Descriptor{Digest: b.Digest, Size: b.Size})
		b.InUse = lockHeld(filepath.Join(dir, stem+".lock"))
		out = append(out, *b)
	}
	return out, nil
}

// lockHeld reports whether a live process holds the lock file at path.
func lockHeld(path string) bool {
	held, err := layout.Held(path)
	return err == nil && held
}

// indexedBlobs returns the <alg>-<hex>-<size> names that have a layer
// index in any format version.
func indexedBlobs(s *cache.Store) map[string]bool {
	out := map[string]bool{}
	for _, e := range artifacts.LayerIndexFiles(s) {
		out[e.Name()] = true
	}
	return out
}
