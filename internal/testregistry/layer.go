package testregistry

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	_ "crypto/sha256" // go-digest needs the sha256 implementation registered.
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker schema2 media types. The OCI ones come from image-spec; Docker never
// defined a zstd layer type, so zstd layers use the OCI type in both flavours,
// as BuildKit does.
const (
	// MediaTypeDockerManifest is a Docker schema2 image manifest.
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	// MediaTypeDockerManifestList is a Docker manifest list, the Docker
	// counterpart of an OCI image index.
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	// MediaTypeDockerConfig is a Docker image config.
	MediaTypeDockerConfig = "application/vnd.docker.container.image.v1+json"
	// MediaTypeDockerLayer is an uncompressed Docker layer tar.
	MediaTypeDockerLayer = "application/vnd.docker.image.rootfs.diff.tar"
	// MediaTypeDockerLayerGzip is a gzip-compressed Docker layer tar.
	MediaTypeDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// layerTime is the mtime of every tar entry. A fixed value keeps layer
// digests independent of when the test runs, and independent of
// Image.Created so that two images can share a layer blob.
var layerTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// ZstdPath is the zstd binary used to compress Zstd layers. Go's standard
// library has no zstd encoder and the module set is fixed, so the harness
// shells out; the Debian package is installed by scripts/setup.sh.
var ZstdPath = "/usr/bin/zstd"

// Compression selects how a tar layer is compressed, and therefore its media
// type.
type Compression int

const (
	// Uncompressed stores the tar as is (media type ...tar).
	Uncompressed Compression = iota
	// Gzip compresses with compress/gzip at BestSpeed (media type ...tar+gzip).
	Gzip
	// Zstd compresses by piping through the zstd binary at ZstdPath (media
	// type ...tar+zstd).
	Zstd
)

// String returns the name used in test names and error messages.
func (c Compression) String() string {
	switch c {
	case Uncompressed:
		return "uncompressed"
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}

// File is one entry of a tar layer. Content comes from Open when it is set,
// otherwise from Data. Open is a function rather than an io.Reader because a
// layer is built afresh on every push (and a Docker and an OCI flavour of the
// same fixture are pushed in one test), and a reader can be drained only once.
//
// Type defaults to a regular file (tar.TypeReg); tar.TypeDir, tar.TypeSymlink
// and tar.TypeLink are also useful, with Linkname for the last two. Mode holds
// permission bits only and defaults to 0644 for files, 0755 for directories
// and 0777 for symlinks. Size is required with Open; with Data it defaults to
// len(Data).
type File struct {
	Name     string
	Type     byte
	Mode     int64
	Linkname string
	Size     int64
	Data     []byte
	Open     func() io.Reader
}

// RandomFile returns a regular file of size incompressible bytes from
// RandomBytes(seed, size). It holds no content in memory, so it suits files of
// hundreds of megabytes.
func RandomFile(name string, seed, size int64) File {
	return File{Name: name, Size: size, Open: func() io.Reader { return RandomBytes(seed, size) }}
}

// BytesFile returns a regular file with the given content.
func BytesFile(name string, data []byte) File {
	return File{Name: name, Data: data, Size: int64(len(data))}
}

// Content returns a fresh reader of the file's content, so that tests can
// compare what they read from a mount or an unpacked rootfs with what was
// pushed.
func (f File) Content() io.Reader {
	if f.Open != nil {
		return f.Open()
	}
	return bytes.NewReader(f.Data)
}

// Layer describes one layer blob. A tar layer lists Files and a Compression;
// a raw (non-tar) blob, such as an in-toto attestation, sets Raw and
// MediaType instead, and its diff_id is the digest of the blob itself, as
// BuildKit writes it.
//
// MediaType, when set, overrides the media type the harness would choose.
// CreatedBy becomes the history entry of the layer in the image config.
type Layer struct {
	Files       []File
	Compression Compression
	Raw         []byte
	MediaType   string
	Annotations map[string]string
	CreatedBy   string
}

// RawLayer returns a non-tar layer whose blob is exactly data.
func RawLayer(mediaType string, data []byte) Layer {
	if data == nil {
		data = []byte{} // Raw being non-nil is what marks the layer raw
	}
	return Layer{Raw: data, MediaType: mediaType}
}

// TarLayer returns a tar layer of files with the given compression.
func TarLayer(c Compression, files ...File) Layer {
	return Layer{Files: files, Compression: c}
}

// IsRaw reports whether the layer is a raw blob rather than a tar.
func (l Layer) IsRaw() bool { return l.Raw != nil }

// TarEntries returns the entries of the layer's tar in the order they are
// written: names cleaned and relative, parents before children, sorted by
// name, including the parent directories that the harness adds (mode 0755)
// when Files does not list them. Tests that compare an unpacked rootfs use
// this as the expected tree. Directory names carry no trailing slash here.
func (l Layer) TarEntries() ([]File, error) {
	byName := make(map[string]File)
	for _, f := range l.Files {
		name := path.Clean(strings.TrimPrefix(f.Name, "/"))
		if name == "." || name == ".." || strings.HasPrefix(name, "../") {
			return nil, fmt.Errorf("layer entry %q: name must stay inside the rootfs", f.Name)
		}
		if _, dup := byName[name]; dup {
			return nil, fmt.Errorf("layer entry %q: listed twice", name)
		}
		f.Name = name
		if f.Type == 0 {
			f.Type = tar.TypeReg
		}
		if f.Mode == 0 {
			switch f.Type {
			case tar.TypeDir:
				f.Mode = 0o755
			case tar.TypeSymlink:
				f.Mode = 0o777
			default:
				f.Mode = 0o644
			}
		}
		if f.Type == tar.TypeReg {
			if f.Open == nil && f.Size == 0 {
				f.Size = int64(len(f.Data))
			}
			if f.Open == nil && f.Size != int64(len(f.Data)) {
				return nil, fmt.Errorf("layer entry %q: Size %d but %d bytes of Data", name, f.Size, len(f.Data))
			}
		} else {
			f.Size = 0
		}
		byName[name] = f
	}
	// Real layers carry their directories; unpackers and FUSE trees should
	// not have to invent them, so neither should the tests' expectations.
	for name := range byName {
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if _, ok := byName[dir]; !ok {
				byName[dir] = File{Name: dir, Type: tar.TypeDir, Mode: 0o755}
			}
		}
	}
	entries := make([]File, 0, len(byName))
	for _, f := range byName {
		entries = append(entries, f)
	}
	// A parent's name is a prefix of its children's, so plain string order
	// puts every directory before its contents.
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	return entries, nil
}

// mediaType is the descriptor media type of the layer in a manifest of the
// given flavour.
func (l Layer) mediaType(docker bool) string {
	if l.MediaType != "" {
		return l.MediaType
	}
	if l.IsRaw() {
		return "application/octet-stream"
	}
	switch {
	case l.Compression == Zstd:
		return ocispec.MediaTypeImageLayerZstd
	case l.Compression == Gzip && docker:
		return MediaTypeDockerLayerGzip
	case l.Compression == Gzip:
		return ocispec.MediaTypeImageLayerGzip
	case docker:
		return MediaTypeDockerLayer
	default:
		return ocispec.MediaTypeImageLayer
	}
}

// builtLayer is a layer blob written to a temporary file, with the digests
// computed on the way so the file is read once more only to upload it.
type builtLayer struct {
	path   string
	desc   ocispec.Descriptor
	diffID digest.Digest
}

// build writes the layer blob into a new file in dir. The caller removes
// b.path. Content streams through, so a layer of any size costs only buffers.
func (l Layer) build(dir string, docker bool) (b builtLayer, err error) {
	f, err := os.CreateTemp(dir, "layer-*.blob")
	if err != nil {
		return b, err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	blobDigester := digest.Canonical.Digester()
	counter := &countWriter{}
	buf := bufio.NewWriterSize(io.MultiWriter(f, blobDigester.Hash(), counter), 1<<20)

	var diffID digest.Digest
	if l.IsRaw() {
		if _, err := buf.Write(l.Raw); err != nil {
			return b, err
		}
	} else {
		diffID, err = l.writeCompressedTar(buf)
		if err != nil {
			return b, err
		}
	}
	if err := buf.Flush(); err != nil {
		return b, err
	}
	d := blobDigester.Digest()
	if diffID == "" {
		diffID = d
	}
	return builtLayer{
		path:   f.Name(),
		diffID: diffID,
		desc: ocispec.Descriptor{
			MediaType:   l.mediaType(docker),
			Digest:      d,
			Size:        counter.n,
			Annotations: l.Annotations,
		},
	}, nil
}

// writeCompressedTar writes the compressed tar to w and returns the diff_id,
// the digest of the uncompressed tar.
func (l Layer) writeCompressedTar(w io.Writer) (digest.Digest, error) {
	entries, err := l.TarEntries()
	if err != nil {
		return "", err
	}
	diffDigester := digest.Canonical.Digester()
	switch l.Compression {
	case Uncompressed:
		if err := writeTar(io.MultiWriter(w, diffDigester.Hash()), entries); err != nil {
			return "", err
		}
	case Gzip:
		// BestSpeed: the fixtures are random bytes that do not compress, and
		// higher levels would only burn the shared machine's CPU.
		gz, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
		if err != nil {
			return "", err
		}
		if err := writeTar(io.MultiWriter(gz, diffDigester.Hash()), entries); err != nil {
			return "", err
		}
		if err := gz.Close(); err != nil {
			return "", err
		}
	case Zstd:
		if err := zstdCompress(w, func(in io.Writer) error {
			return writeTar(io.MultiWriter(in, diffDigester.Hash()), entries)
		}); err != nil {
			return "", err
		}
	default:
		return "", fmt.Errorf("unknown compression %v", l.Compression)
	}
	return diffDigester.Digest(), nil
}

// writeTar writes entries as a tar with deterministic headers: fixed mtime,
// root ownership, no user or group names.
func writeTar(w io.Writer, entries []File) error {
	tw := tar.NewWriter(w)
	for _, f := range entries {
		hdr := &tar.Header{
			Typeflag: f.Type,
			Name:     f.Name,
			Linkname: f.Linkname,
			Mode:     f.Mode,
			Size:     f.Size,
			ModTime:  layerTime,
			// PAX keeps headers identical whatever the name length, instead
			// of letting the writer switch formats per entry.
			Format: tar.FormatPAX,
		}
		if f.Type == tar.TypeDir {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("tar %s: %w", f.Name, err)
		}
		if f.Type != tar.TypeReg {
			continue
		}
		n, err := io.Copy(tw, io.LimitReader(f.Content(), f.Size))
		if err != nil {
			return fmt.Errorf("tar %s: %w", f.Name, err)
		}
		if n != f.Size {
			return fmt.Errorf("tar %s: content has %d bytes, Size says %d", f.Name, n, f.Size)
		}
	}
	return tw.Close()
}

// zstdCompress runs the zstd binary with write feeding its stdin and its
// output going to w.
func zstdCompress(w io.Writer, write func(io.Writer) error) error {
	if _, err := os.Stat(ZstdPath); err != nil {
		return fmt.Errorf("zstd layer: %s not found (run scripts/setup.sh): %w", ZstdPath, err)
	}
	// A fixed -T1 keeps the output, and so the digest, from depending on the
	// machine's core count or on the installed zstd's default thread setting.
	cmd := exec.Command(ZstdPath, "-q", "-c", "-T1")
	cmd.Stdout = w
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("zstd: %w", err)
	}
	werr := write(stdin)
	cerr := stdin.Close()
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("zstd: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return errors.Join(werr, cerr)
}

// countWriter counts the bytes written through it.
type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}
