package imagemount

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/cache/artifacts"
	"github.com/imgfs/imgfs/internal/layer"
	"github.com/imgfs/imgfs/internal/testlog"
)

// memFetcher serves blobs from memory, and fails every fetch of the blobs
// in fail.
type memFetcher struct {
	blobs map[digest.Digest][]byte
	fail  map[digest.Digest]bool
}

func (m *memFetcher) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	return m.FetchRange(ctx, desc, 0, desc.Size)
}

func (m *memFetcher) FetchRange(_ context.Context, desc ocispec.Descriptor, off, length int64) (io.ReadCloser, error) {
	b, ok := m.blobs[desc.Digest]
	if !ok || m.fail[desc.Digest] || off+length > int64(len(b)) {
		return nil, fmt.Errorf("fetch %s [%d,+%d): injected failure", desc.Digest, off, length)
	}
	return io.NopCloser(bytes.NewReader(b[off : off+length])), nil
}

func (m *memFetcher) add(mediaType string, b []byte) ocispec.Descriptor {
	d := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	m.blobs[d.Digest] = b
	return d
}

func tarOf(t *testing.T, names ...string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(n))}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(n))
	}
	tw.Close()
	return buf.Bytes()
}

func gzipOf(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// brokenTar is a tar whose third header has a bad checksum.
func brokenTar(t *testing.T) []byte {
	b := tarOf(t, "a", "b", "c", "d")
	b[2*1024+148] ^= 0xff // c's header, after a's and b's header and data blocks
	return b
}

type layerFilesFixture struct {
	store *cache.Store
	fetch *memFetcher
	log   *testlog.Buffer
}

func newLayerFilesFixture(t *testing.T, verify cache.VerifyMode) *layerFilesFixture {
	store, err := cache.Open(t.TempDir(), cache.Options{Verify: verify, FetchTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return &layerFilesFixture{store: store, fetch: &memFetcher{blobs: map[digest.Digest][]byte{}, fail: map[digest.Digest]bool{}}, log: &testlog.Buffer{}}
}

// files is a mount's layerFiles, closed with the test.
func (fx *layerFilesFixture) files(t *testing.T) *layerFiles {
	work := newWorkGroup()
	t.Cleanup(func() { work.close(time.Second) })
	return newLayerFiles(fx.store, fx.fetch, work, slog.New(slog.NewTextHandler(fx.log, nil)))
}

func statsOf(l *layerFiles, d digest.Digest) LayerStats {
	for _, s := range l.stats() {
		if s.Layer == d {
			return s
		}
	}
	return LayerStats{}
}

// TestBrokenLayerIsNoLayer: a layer whose stream breaks is an error that
// wraps layer.ErrBroken, never a Layer listing the entries before the
// break; its stats row and the log say why. A verdict on verified bytes (a
// gzip pass, a strict tar walk) stands; a lazy walk's is tried again, as is
// a layer whose fetch failed, which is not broken.
func TestBrokenLayerIsNoLayer(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		verify    cache.VerifyMode
		mediaType string
		blob      []byte
		final     bool
	}{
		{"gzip", cache.VerifyLazy, ocispec.MediaTypeImageLayerGzip, gzipOf(brokenTar(t)), true},
		{"tar lazy", cache.VerifyLazy, ocispec.MediaTypeImageLayer, brokenTar(t), false},
		{"tar strict", cache.VerifyStrict, ocispec.MediaTypeImageLayer, brokenTar(t), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newLayerFilesFixture(t, tc.verify)
			d := fx.fetch.add(tc.mediaType, tc.blob)
			files := fx.files(t)
			l, err := files.Layer(ctx, d)
			if l != nil || !errors.Is(err, layer.ErrBroken) || !strings.Contains(err.Error(), `after entry "b"`) {
				t.Fatalf("Layer: %v, %v; want ErrBroken after entry b", l, err)
			}
			if s := statsOf(files, d.Digest); s.State != "broken" || s.Error != err.Error() {
				t.Errorf("stats row %+v, want state broken and the error", s)
			}
			if log := fx.log.String(); !strings.Contains(log, "level=ERROR") || !strings.Contains(log, d.Digest.String()) || !strings.Contains(log, "invalid tar header") {
				t.Errorf("log does not name the layer and the cause at error level:\n%s", log)
			}
			first := files.builds[d.Digest]
			if _, err := files.Layer(ctx, d); !errors.Is(err, layer.ErrBroken) {
				t.Fatalf("second Layer: %v", err)
			}
			if again := files.builds[d.Digest] == first; again != tc.final {
				t.Errorf("second look reused the verdict: %v, want %v", again, tc.final)
			}
			if _, stored, _ := artifacts.ReadLayerIndex(fx.store, d, layer.IndexVersion); stored {
				t.Error("a broken layer's index was stored")
			}
		})
	}

	t.Run("fetch failure is not broken", func(t *testing.T) {
		fx := newLayerFilesFixture(t, cache.VerifyLazy)
		d := fx.fetch.add(ocispec.MediaTypeImageLayer, tarOf(t, "a"))
		fx.fetch.fail[d.Digest] = true
		files := fx.files(t)
		if _, err := files.Layer(ctx, d); err == nil || errors.Is(err, layer.ErrBroken) {
			t.Fatalf("Layer: %v, want a fetch error", err)
		}
		if s := statsOf(files, d.Digest); s.State != "failed" || s.Error == "" {
			t.Errorf("stats row %+v, want failed with the error", s)
		}
		first := files.builds[d.Digest]
		files.Layer(ctx, d)
		if files.builds[d.Digest] == first {
			t.Error("a failed fetch was not tried again")
		}
	})
}

// TestStoredBrokenIndexNotUsed: a stored index that says it is broken
// (no imgfs stores one) is not served: the layer is indexed again.
func TestStoredBrokenIndexNotUsed(t *testing.T) {
	ctx := context.Background()
	fx := newLayerFilesFixture(t, cache.VerifyLazy)
	raw := tarOf(t, "a", "b")
	d := fx.fetch.add(ocispec.MediaTypeImageLayerGzip, gzipOf(raw))
	if _, err := fx.files(t).Layer(ctx, d); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, ok, _ := artifacts.ReadLayerIndex(fx.store, d, layer.IndexVersion); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the index was never stored")
		}
	}
	idx, err := layer.BuildGzip(bytes.NewReader(gzipOf(raw)), layer.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	idx.Entries, idx.Err = idx.Entries[:1], "planted"
	data, _ := idx.MarshalBinary()
	if err := artifacts.WriteLayerIndex(fx.store, d, layer.IndexVersion, data); err != nil {
		t.Fatal(err)
	}

	files := fx.files(t)
	l, err := files.Layer(ctx, d)
	if err != nil || len(l.Index().Entries) != 2 {
		t.Fatalf("Layer: %v", err)
	}
	if s := statsOf(files, d.Digest); s.Source != "pass" {
		t.Errorf("index source %q, want a new pass", s.Source)
	}
}
