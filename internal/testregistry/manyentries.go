package testregistry

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ManyEntries describes the tree ManyEntriesLayer writes: what a hostile
// (or merely huge) layer of tiny files looks like to a file index.
type ManyEntries struct {
	Entries int // tar entries in all, directories included
	Dirs    int // of which directories
}

// The shape of ManyEntriesLayer's tree: usr/lib/pkgNNNN/modNN/subN/ holds
// manyFilesPerDir empty files; each level holds a fixed number of the next.
const (
	manyFilesPerDir = 90
	manySubsPerMod  = 10
	manyModsPerPkg  = 100
)

// ManyEntriesLayer builds a deterministic gzip layer of n tar entries:
// directories and empty regular files at depths of 3 to 6, named as a
// package tree would be (usr/lib/pkg0003/mod17/sub4/file0042.py), in
// USTAR headers with a fixed mtime. A million entries is about 512 MB of
// tar and about 10 MB of gzip (BestSpeed). The directories are
// emitted before what they hold, as tar writers do.
func ManyEntriesLayer(n int) (PreparedLayer, ManyEntries, error) {
	var info ManyEntries
	if n < 2 {
		return PreparedLayer{}, info, fmt.Errorf("many-entries layer: %d entries, want at least 2", n)
	}
	var out byteSink
	gz, err := gzip.NewWriterLevel(&out, gzip.BestSpeed)
	if err != nil {
		return PreparedLayer{}, info, err
	}
	diff := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(gz, diff))
	mtime := time.Unix(1_600_000_000, 0)
	put := func(name string, dir bool) error {
		h := &tar.Header{Name: name, Mode: 0o644, Typeflag: tar.TypeReg, ModTime: mtime, Format: tar.FormatUSTAR}
		if dir {
			h.Mode, h.Typeflag = 0o755, tar.TypeDir
			info.Dirs++
		}
		info.Entries++
		return tw.WriteHeader(h)
	}
	if err := put("usr/", true); err != nil {
		return PreparedLayer{}, info, err
	}
	if err := put("usr/lib/", true); err != nil {
		return PreparedLayer{}, info, err
	}
	for pkg := 0; info.Entries < n; pkg++ {
		pdir := fmt.Sprintf("usr/lib/pkg%04d/", pkg)
		if err := put(pdir, true); err != nil {
			return PreparedLayer{}, info, err
		}
		for mod := 0; mod < manyModsPerPkg && info.Entries < n; mod++ {
			mdir := fmt.Sprintf("%smod%02d/", pdir, mod)
			if err := put(mdir, true); err != nil {
				return PreparedLayer{}, info, err
			}
			// Every tenth module keeps its files directly, one level up.
			if mod%10 == 9 {
				for f := 0; f < manyFilesPerDir && info.Entries < n; f++ {
					if err := put(fmt.Sprintf("%sfile%04d.py", mdir, f), false); err != nil {
						return PreparedLayer{}, info, err
					}
				}
				continue
			}
			for sub := 0; sub < manySubsPerMod && info.Entries < n; sub++ {
				sdir := fmt.Sprintf("%ssub%d/", mdir, sub)
				if err := put(sdir, true); err != nil {
					return PreparedLayer{}, info, err
				}
				for f := 0; f < manyFilesPerDir && info.Entries < n; f++ {
					if err := put(fmt.Sprintf("%sfile%04d.py", sdir, f), false); err != nil {
						return PreparedLayer{}, info, err
					}
				}
			}
		}
	}
	if err := tw.Close(); err != nil {
		return PreparedLayer{}, info, err
	}
	if err := gz.Close(); err != nil {
		return PreparedLayer{}, info, err
	}
	return PreparedLayer{
		Data:      out.b,
		MediaType: ocispec.MediaTypeImageLayerGzip,
		DiffID:    digest.NewDigest(digest.SHA256, diff),
	}, info, nil
}

// byteSink is a bytes.Buffer without the read side, so the layer's bytes
// are not copied again when they are taken.
type byteSink struct{ b []byte }

func (s *byteSink) Write(p []byte) (int, error) {
	s.b = append(s.b, p...)
	return len(p), nil
}
