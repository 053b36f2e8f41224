package fusefs

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/layer"
	"github.com/imgfs/imgfs/internal/oci"
	"github.com/imgfs/imgfs/internal/testfuse"
)

// fakeLayerFiles hands out a Layer over each index it holds, as it is,
// whatever the index says.
type fakeLayerFiles map[digest.Digest]*layer.Index

func (f fakeLayerFiles) Layer(_ context.Context, desc ocispec.Descriptor) (layer.Layer, error) {
	idx, ok := f[desc.Digest]
	if !ok {
		return nil, errors.New("no such layer")
	}
	return indexOnly{idx}, nil
}

// indexOnly is a Layer with an index and no bytes.
type indexOnly struct{ idx *layer.Index }

func (l indexOnly) Index() *layer.Index { return l.idx }
func (l indexOnly) ReadFile(context.Context, int, []byte, int64) (int, error) {
	return 0, io.ErrUnexpectedEOF
}

func fileIndex(names ...string) *layer.Index {
	idx := &layer.Index{Format: oci.FormatTar}
	for _, n := range names {
		idx.Entries = append(idx.Entries, layer.Entry{Name: n, Type: layer.TypeRegular, Mode: 0o644, Offset: -1})
	}
	return idx
}

// TestBrokenIndexAnswersEIO: a layer whose index is broken answers EIO
// under its own tree and under rootfs/, even from a LayerFiles that hands
// it over as a Layer, rather than listing the entries before the break;
// the other layers' trees list as before.
func TestBrokenIndexAnswersEIO(t *testing.T) {
	testfuse.Require(t)
	ti := newTestImage(t)
	broken := fileIndex("etc/before-the-break")
	broken.Err = "tar stream at offset 1536, after entry \"etc/before-the-break\": archive/tar: header field too long"
	ti.img.Files = fakeLayerFiles{
		ti.onDisk.Digest: fileIndex("etc/ok"),
		ti.lazy.Digest:   fileIndex(),
		ti.small.Digest:  broken,
	}
	_, mnt := mountTest(t, ti, io.Discard)
	names := layerNames(ti.img.Platforms[0].Layers)
	tree := func(i int) string {
		return filepath.Join(mnt, "layers", strings.TrimSuffix(names[i], oci.LayerExt(ti.img.Platforms[0].Layers[i].MediaType)))
	}
	for _, dir := range []string{filepath.Join(mnt, "rootfs"), filepath.Join(mnt, "platforms", "linux-amd64", "rootfs"), tree(2)} {
		out, stderr, err := run(t, "ls", "-A", dir)
		if err == nil || !strings.Contains(stderr, "Input/output error") {
			t.Errorf("ls %s: %v, %q %q; want EIO", dir, err, out, stderr)
		}
	}
	if out := mustRun(t, "ls", "-A", tree(0)); out != "etc\n" {
		t.Errorf("the good layer's tree lists %q", out)
	}
}
