package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/testregistry"
)

// Repositories and tags of the benchmark images.
const (
	repoBig       = "big"
	repoRealistic = "realistic"
	repoMulti     = "multi"
	repoLayers100 = "layers100"
	repoSmall     = "small"
	tag           = "v1"
)

// bigSize is the size of the one file in the big image's only layer.
const bigSize = 512 << 20

// images are the pushed benchmark images.
type images struct {
	big       testregistry.Pushed      // one 512 MiB incompressible uncompressed layer
	realistic testregistry.Pushed      // six gzip layers of mixed sizes, about 60 MiB
	multi     testregistry.PushedIndex // an index of 20 small single-layer images
	layers100 testregistry.Pushed      // 100 small layers
	small     testregistry.Pushed      // one small layer
}

// bigLayer is the descriptor of the big image's layer, the blob most
// scenarios read.
func (im images) bigLayer() ocispec.Descriptor { return im.big.Layers[0] }

// pushImages builds and pushes every benchmark image. All content derives
// from fixed seeds, so digests are the same on every run and machine.
func pushImages(ctx context.Context, reg *testregistry.Registry) (images, error) {
	var im images
	var err error
	steps := []struct {
		name string
		push func() error
	}{
		{"big", func() error {
			im.big, err = reg.PushImage(repoBig, tag, testregistry.Image{Layers: []testregistry.Layer{
				testregistry.TarLayer(testregistry.Uncompressed, testregistry.RandomFile("data/big.bin", 512, bigSize)),
			}})
			return err
		}},
		{"realistic", func() error {
			im.realistic, err = reg.PushImage(repoRealistic, tag, testregistry.Image{Layers: realisticLayers()})
			return err
		}},
		{"multi", func() error {
			im.multi, err = pushMultiPlatform(reg)
			return err
		}},
		{"layers100", func() error {
			layers := make([]testregistry.Layer, 100)
			for i := range layers {
				seed := int64(10_000 + i)
				layers[i] = testregistry.TarLayer(testregistry.Gzip,
					textFile(fmt.Sprintf("layer%03d/notes.txt", i), seed, 2<<10),
					testregistry.RandomFile(fmt.Sprintf("layer%03d/data.bin", i), seed, 4<<10))
			}
			im.layers100, err = reg.PushImage(repoLayers100, tag, testregistry.Image{Layers: layers})
			return err
		}},
		{"small", func() error {
			im.small, err = reg.PushImage(repoSmall, tag, testregistry.Image{Layers: []testregistry.Layer{
				testregistry.TarLayer(testregistry.Gzip,
					textFile("etc/notes.txt", 20_000, 2<<10),
					testregistry.RandomFile("data/data.bin", 20_000, 4<<10)),
			}})
			return err
		}},
	}
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return im, err
		}
		start := time.Now()
		if err := s.push(); err != nil {
			return im, fmt.Errorf("push %s image: %w", s.name, err)
		}
		fmt.Fprintf(os.Stderr, "bench: pushed %s:%s in %.1f s\n", s.name, tag, time.Since(start).Seconds())
	}
	return im, nil
}

// realisticLayers are the layers of an application image as a build would
// stack them: a large base, a toolchain, dependencies, the application, its
// configuration and an entrypoint. Text files (which gzip shrinks about
// threefold) are mixed with incompressible "binaries", so the layers total
// about 60 MiB compressed from about 115 MiB of content.
func realisticLayers() []testregistry.Layer {
	layer := func(groups ...[]testregistry.File) testregistry.Layer {
		var files []testregistry.File
		for _, g := range groups {
			files = append(files, g...)
		}
		return testregistry.TarLayer(testregistry.Gzip, files...)
	}
	return []testregistry.Layer{
		layer(textFiles("usr/share/doc", 101, 400, 40<<20), randomFiles("usr/lib", 102, 60, 12<<20)),
		layer(randomFiles("usr/bin", 201, 40, 10<<20), textFiles("usr/include", 202, 200, 8<<20)),
		layer(textFiles("usr/lib/python3/site-packages", 301, 800, 26<<20), randomFiles("usr/lib/python3/native", 302, 30, 5<<20)),
		layer(randomFiles("app/bin", 401, 4, 6<<20), textFiles("app/src", 402, 120, 8<<20)),
		layer(textFiles("app/config", 501, 40, 1<<20)),
		layer(textFiles("app/entrypoint", 601, 1, 8<<10)),
	}
}

// textFiles returns n text files under dir whose sizes vary (by a fixed
// seed) and add up to total.
func textFiles(dir string, seed int64, n int, total int64) []testregistry.File {
	files := make([]testregistry.File, n)
	for i, size := range splitSizes(seed, n, total) {
		files[i] = textFile(fmt.Sprintf("%s/file%04d.txt", dir, i), seed*100_000+int64(i), size)
	}
	return files
}

// randomFiles is textFiles for incompressible content.
func randomFiles(dir string, seed int64, n int, total int64) []testregistry.File {
	files := make([]testregistry.File, n)
	for i, size := range splitSizes(seed, n, total) {
		files[i] = testregistry.RandomFile(fmt.Sprintf("%s/lib%04d.so", dir, i), seed*100_000+int64(i), size)
	}
	return files
}

// splitSizes splits total into n deterministic sizes that range over about
// two orders of magnitude, as file sizes in an image do.
func splitSizes(seed int64, n int, total int64) []int64 {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	weights := make([]float64, n)
	var sum float64
	for i := range weights {
		weights[i] = 1 + 99*rng.Float64()*rng.Float64()
		sum += weights[i]
	}
	sizes := make([]int64, n)
	var used int64
	for i, w := range weights {
		sizes[i] = int64(float64(total) * w / sum)
		used += sizes[i]
	}
	sizes[n-1] += total - used
	return sizes
}

// textFile returns a file of size bytes of deterministic text (see
// textReader) from seed, generated as it is read.
func textFile(name string, seed, size int64) testregistry.File {
	return testregistry.File{Name: name, Size: size, Open: func() io.Reader { return newTextReader(seed, size) }}
}

// vocabulary is the fixed word list textReader draws from.
var vocabulary = func() [][]byte {
	rng := rand.New(rand.NewPCG(7, 7))
	const letters = "abcdefghijklmnopqrstuvwxyz_"
	words := make([][]byte, 4096)
	for i := range words {
		w := make([]byte, 2+rng.IntN(9))
		for j := range w {
			w[j] = letters[rng.IntN(len(letters))]
		}
		words[i] = w
	}
	return words
}()

// textReader yields exactly n bytes of lines of words drawn with a Zipf
// law from vocabulary. It compresses roughly as source code and
// documentation do, and its output does not depend on how it is read.
type textReader struct {
	rng     *rand.Rand
	zipf    *rand.Zipf
	left    int64
	pending []byte // the rest of the current word and its separator
	onLine  int    // words written on the current line
}

func newTextReader(seed, n int64) *textReader {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x7e47))
	return &textReader{rng: rng, zipf: rand.NewZipf(rng, 1.2, 2, uint64(len(vocabulary)-1)), left: n}
}

func (t *textReader) Read(p []byte) (int, error) {
	if t.left == 0 {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && t.left > 0 {
		if len(t.pending) == 0 {
			t.pending = append(t.pending[:0], vocabulary[t.zipf.Uint64()]...)
			t.onLine++
			if t.onLine >= 6+t.rng.IntN(8) {
				t.pending = append(t.pending, '\n')
				t.onLine = 0
			} else {
				t.pending = append(t.pending, ' ')
			}
		}
		c := copy(p[n:], t.pending)
		c = int(min(int64(c), t.left))
		t.pending = t.pending[c:]
		t.left -= int64(c)
		n += c
	}
	return n, nil
}

// platforms20 are the platforms of the multi-platform index, one image
// each, as a widely built base image lists them.
var platforms20 = []ocispec.Platform{
	{OS: "linux", Architecture: "amd64"},
	{OS: "linux", Architecture: "amd64", Variant: "v2"},
	{OS: "linux", Architecture: "amd64", Variant: "v3"},
	{OS: "linux", Architecture: "386"},
	{OS: "linux", Architecture: "arm64", Variant: "v8"},
	{OS: "linux", Architecture: "arm", Variant: "v7"},
	{OS: "linux", Architecture: "arm", Variant: "v6"},
	{OS: "linux", Architecture: "arm", Variant: "v5"},
	{OS: "linux", Architecture: "ppc64le"},
	{OS: "linux", Architecture: "ppc64"},
	{OS: "linux", Architecture: "s390x"},
	{OS: "linux", Architecture: "riscv64"},
	{OS: "linux", Architecture: "mips64le"},
	{OS: "linux", Architecture: "mips64"},
	{OS: "linux", Architecture: "mipsle"},
	{OS: "linux", Architecture: "loong64"},
	{OS: "windows", Architecture: "amd64", OSVersion: "10.0.17763.5458"},
	{OS: "windows", Architecture: "amd64", OSVersion: "10.0.20348.2322"},
	{OS: "windows", Architecture: "arm64", OSVersion: "10.0.26100.1"},
	{OS: "freebsd", Architecture: "amd64"},
}

// pushMultiPlatform pushes one small image per platform (by digest) and an
// OCI index listing them all.
func pushMultiPlatform(reg *testregistry.Registry) (testregistry.PushedIndex, error) {
	entries := make([]testregistry.IndexEntry, len(platforms20))
	for i, p := range platforms20 {
		seed := int64(30_000 + i)
		img := testregistry.Image{Platform: p, Layers: []testregistry.Layer{
			testregistry.TarLayer(testregistry.Gzip,
				testregistry.BytesFile("etc/platform", []byte(fmt.Sprintf("%s/%s/%s %s\n", p.OS, p.Architecture, p.Variant, p.OSVersion))),
				testregistry.RandomFile("data/arch.bin", seed, 16<<10)),
		}}
		pushed, err := reg.PushImage(repoMulti, "", img)
		if err != nil {
			return testregistry.PushedIndex{}, err
		}
		entries[i] = pushed.Entry()
	}
	return reg.PushIndex(repoMulti, tag, false, entries...)
}

// describe summarises the images for the report.
func (im images) describe() []ImageInfo {
	info := func(name string, p testregistry.Pushed) ImageInfo {
		i := ImageInfo{Name: name + ":" + tag, Manifest: p.Manifest.Digest.String(), Layers: len(p.Layers)}
		for _, l := range p.Layers {
			i.LayerBytes += l.Size
		}
		return i
	}
	multi := ImageInfo{Name: repoMulti + ":" + tag, Manifest: im.multi.Index.Digest.String(), Platforms: len(im.multi.Entries)}
	return []ImageInfo{
		info(repoBig, im.big),
		info(repoRealistic, im.realistic),
		multi,
		info(repoLayers100, im.layers100),
		info(repoSmall, im.small),
	}
}
