package layout

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/oci"
)

// The top-level entries of a cache directory. blobs/ holds only verified
// content; everything in progress is under ingest/.
const (
	Blobs     = "blobs"      // blobs/<alg>/<hex>: committed, verified blobs
	Ingest    = "ingest"     // partial blobs, their state and locks, temporaries
	Sources   = "sources"    // sources/<alg>/<hex>: where each blob came from
	Indexes   = "indexes"    // indexes/v<n>/<stem>: layer file indexes
	Files     = "files"      // files/v<n>/<stem>-<entry>: copies of view files
	Pins      = "pins"       // pins/<pid>-<random>.json: one per live mount
	Logs      = "logs"       // background mounts' logs
	IndexJSON = "index.json" // the OCI layout's references
)

// The cache holds images pulled with the user's credentials: directories
// are the user's alone, files are never writable by others, whatever the
// umask.
const (
	DirMode  = 0o700
	FileMode = 0o600
)

// CheckBlob is oci.CheckDigest plus the check on a size the cache acts on.
// Every path built from a digest goes through it first.
func CheckBlob(d digest.Digest, size int64) error {
	if err := oci.CheckDigest(d); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("blob %s: negative size %d", d, size)
	}
	return nil
}

// BlobPath is where the committed blob d lives under root.
func BlobPath(root string, d digest.Digest) (string, error) {
	if err := oci.CheckDigest(d); err != nil {
		return "", err
	}
	return filepath.Join(root, Blobs, d.Algorithm().String(), d.Encoded()), nil
}

// SourcesPath is where the sources of blob d are recorded under root.
func SourcesPath(root string, d digest.Digest) (string, error) {
	if err := oci.CheckDigest(d); err != nil {
		return "", err
	}
	return filepath.Join(root, Sources, d.Algorithm().String(), d.Encoded()), nil
}

// IngestPath names the files of a blob in progress: <stem><suffix> under
// ingest/, with suffix ".partial", ".state" or ".lock". The size is part
// of the stem so that two descriptors with one digest and different sizes
// never share a file.
func IngestPath(root string, d digest.Digest, size int64, suffix string) (string, error) {
	if err := CheckBlob(d, size); err != nil {
		return "", err
	}
	return filepath.Join(root, Ingest, Stem(d, size)+suffix), nil
}

// Stem is <alg>-<hex>-<size>, the name a blob's files in ingest/, its
// layer index and its file copies are built on.
func Stem(d digest.Digest, size int64) string {
	return d.Algorithm().String() + "-" + d.Encoded() + "-" + strconv.FormatInt(size, 10)
}

// ParseStem splits <alg>-<hex>-<size>, refusing a digest or size the cache
// would not build a path from.
func ParseStem(stem string) (digest.Digest, int64, bool) {
	parts := strings.Split(stem, "-")
	if len(parts) != 3 {
		return "", 0, false
	}
	d := digest.Digest(parts[0] + ":" + parts[1])
	size, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || size < 0 || oci.CheckDigest(d) != nil {
		return "", 0, false
	}
	return d, size, true
}

// LayerIndexPath names the stored index of the layer desc in format
// version: indexes/v<version>/<stem>, so a new index format never reads an
// old one.
func LayerIndexPath(root string, desc ocispec.Descriptor, version int) (string, error) {
	if err := CheckBlob(desc.Digest, desc.Size); err != nil {
		return "", err
	}
	if version <= 0 {
		return "", fmt.Errorf("layer index version %d", version)
	}
	return filepath.Join(root, Indexes, "v"+strconv.Itoa(version), Stem(desc.Digest, desc.Size)), nil
}

// FileCopyPath names the copy of file entry of layer, as the layer's index
// in format version numbers its files: files/v<version>/<stem>-<entry>.
func FileCopyPath(root string, layer ocispec.Descriptor, version, entry int) (string, error) {
	if err := CheckBlob(layer.Digest, layer.Size); err != nil {
		return "", err
	}
	if version <= 0 || entry < 0 {
		return "", fmt.Errorf("file copy: version %d, entry %d", version, entry)
	}
	name := Stem(layer.Digest, layer.Size) + "-" + strconv.Itoa(entry)
	return filepath.Join(root, Files, "v"+strconv.Itoa(version), name), nil
}

// ParseFileCopyName splits <alg>-<hex>-<size>-<entry>, as FileCopyPath
// names a copy, into its layer's digest and size.
func ParseFileCopyName(name string) (digest.Digest, int64, bool) {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return "", 0, false
	}
	if entry, err := strconv.Atoi(name[i+1:]); err != nil || entry < 0 {
		return "", 0, false
	}
	return ParseStem(name[:i])
}
