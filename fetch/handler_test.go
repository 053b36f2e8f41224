package fetch

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/semaphore"

	"github.com/imgfs/imgfs/internal/oci"
)

// memProvider is an in-memory Provider for walking synthetic trees.
type memProvider map[digest.Digest][]byte

func (m memProvider) ReadMetadata(_ context.Context, desc ocispec.Descriptor) ([]byte, error) {
	data, ok := m[desc.Digest]
	if !ok {
		return nil, errors.New("missing " + desc.Digest.String())
	}
	return data, nil
}

func (m memProvider) add(mediaType string, v any) ocispec.Descriptor {
	data, _ := json.Marshal(v)
	d := digest.FromBytes(data)
	m[d] = data
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
}

func blobDesc(mediaType, name string) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromString(name), Size: int64(len(name))}
}

// testIndex builds an index of amd64, arm64/v8 and an attestation manifest,
// each with a config and one layer named after it.
func testIndex(m memProvider, docker bool) ocispec.Descriptor {
	manifestType, indexType, configType, layerType := ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageConfig, ocispec.MediaTypeImageLayerGzip
	if docker {
		manifestType, indexType, configType, layerType = oci.DockerManifest, oci.DockerManifestList, oci.DockerConfig, oci.DockerLayer
	}
	var entries []ocispec.Descriptor
	for _, p := range []ocispec.Platform{
		{OS: "linux", Architecture: "amd64"},
		{OS: "linux", Architecture: "arm64", Variant: "v8"},
		{OS: "unknown", Architecture: "unknown"},
	} {
		name := platforms.Format(p)
		mf := ocispec.Manifest{
			MediaType: manifestType,
			Config:    blobDesc(configType, "config "+name),
			Layers:    []ocispec.Descriptor{blobDesc(layerType, "layer "+name)},
		}
		mf.SchemaVersion = 2
		d := m.add(manifestType, mf)
		d.Platform = &p
		entries = append(entries, d)
	}
	idx := ocispec.Index{MediaType: indexType, Manifests: entries}
	idx.SchemaVersion = 2
	return m.add(indexType, idx)
}

// walk runs h over root and returns the digests handled, sorted by name.
func walk(t *testing.T, h Handler, root ocispec.Descriptor) []string {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	record := HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		children, err := h.Handle(ctx, desc)
		mu.Lock()
		seen = append(seen, string(oci.KindOf(desc))+" "+platformOf(desc))
		mu.Unlock()
		return children, err
	})
	if err := Dispatch(context.Background(), record, semaphore.NewWeighted(2), root); err != nil {
		t.Fatal(err)
	}
	slices.Sort(seen)
	return seen
}

func platformOf(desc ocispec.Descriptor) string {
	if desc.Platform == nil {
		return ""
	}
	return platforms.Format(*desc.Platform)
}

func TestPlatformFilters(t *testing.T) {
	arm := platforms.Only(ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"})
	for _, docker := range []bool{false, true} {
		m := memProvider{}
		root := testIndex(m, docker)
		children := ChildrenHandler(m)
		tests := []struct {
			name string
			h    Handler
			want int // descriptors handled
			kind map[oci.Kind]int
		}{
			{"all platforms", children, 10, map[oci.Kind]int{oci.KindManifest: 3, oci.KindConfig: 3, oci.KindLayer: 3}},
			{"arm64 only", FilterPlatforms(children, arm), 4, map[oci.Kind]int{oci.KindManifest: 1, oci.KindLayer: 1}},
			{"all metadata", FilterManifestByPlatform(children, arm), 8, map[oci.Kind]int{oci.KindManifest: 3, oci.KindConfig: 3, oci.KindLayer: 1}},
			{"limit 1 of all", LimitManifests(children, platforms.Ordered(ocispec.Platform{OS: "linux", Architecture: "amd64"}), 1), 4, map[oci.Kind]int{oci.KindManifest: 1}},
			{"metadata only", DropLayers(children), 7, map[oci.Kind]int{oci.KindLayer: 0}},
		}
		for _, tt := range tests {
			seen := walk(t, tt.h, root)
			if len(seen) != tt.want {
				t.Errorf("docker=%v %s: handled %d %v, want %d", docker, tt.name, len(seen), seen, tt.want)
			}
			for kind, n := range tt.kind {
				got := 0
				for _, s := range seen {
					if strings.HasPrefix(s, string(kind)+" ") {
						got++
					}
				}
				if got != n {
					t.Errorf("docker=%v %s: %d %s, want %d (%v)", docker, tt.name, got, kind, n, seen)
				}
			}
		}
	}
}

func TestLimitManifestsPrefersBestMatch(t *testing.T) {
	m := memProvider{}
	root := testIndex(m, false)
	want := ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	h := LimitManifests(ChildrenHandler(m), platforms.Ordered(want), 1)
	children, err := h.Handle(context.Background(), root)
	if err != nil || len(children) != 1 || children[0].Platform.Architecture != "arm64" {
		t.Fatalf("got %v, %v", children, err)
	}
}

func TestDispatchSkipStopAndErrors(t *testing.T) {
	m := memProvider{}
	root := testIndex(m, false)
	children := ChildrenHandler(m)

	skipConfigs := HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		if oci.KindOf(desc) == oci.KindManifest {
			return nil, ErrSkipDesc
		}
		return children(ctx, desc)
	})
	if seen := walk(t, skipConfigs, root); len(seen) != 4 {
		t.Errorf("ErrSkipDesc: handled %v, want the index and 3 manifests", seen)
	}

	var after atomic.Int32
	stop := Handlers(HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		return nil, ErrStopHandler
	}), HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		after.Add(1)
		return nil, nil
	}))
	if err := Dispatch(context.Background(), stop, nil, root); err != nil || after.Load() != 0 {
		t.Errorf("ErrStopHandler: err %v, later handler ran %d times", err, after.Load())
	}

	boom := errors.New("boom")
	failing := HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		if oci.KindOf(desc) == oci.KindLayer {
			return nil, boom
		}
		return children(ctx, desc)
	})
	if err := Dispatch(context.Background(), failing, semaphore.NewWeighted(1), root); !errors.Is(err, boom) {
		t.Errorf("Dispatch = %v, want boom", err)
	}
}

func TestDispatchRespectsLimiter(t *testing.T) {
	m := memProvider{}
	root := testIndex(m, false)
	children := ChildrenHandler(m)
	var running, peak atomic.Int32
	slow := HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		running.Add(-1)
		return children(ctx, desc)
	})
	if err := Dispatch(context.Background(), slow, semaphore.NewWeighted(2), root); err != nil {
		t.Fatal(err)
	}
	if peak.Load() > 2 || peak.Load() < 2 {
		t.Errorf("peak concurrency %d, want 2", peak.Load())
	}
}

func TestChildrenOrderAndErrors(t *testing.T) {
	m := memProvider{}
	root := testIndex(m, true)
	idx, _ := m.ReadMetadata(context.Background(), root)
	manifests, err := Children(root, idx)
	if err != nil || len(manifests) != 3 {
		t.Fatalf("index children: %v %v", manifests, err)
	}
	data, _ := m.ReadMetadata(context.Background(), manifests[0])
	kids, err := Children(manifests[0], data)
	if err != nil || oci.KindOf(kids[0]) != oci.KindConfig || oci.KindOf(kids[1]) != oci.KindLayer {
		t.Fatalf("manifest children: %v %v", kids, err)
	}
	if _, err := Children(manifests[0], []byte("{")); err == nil {
		t.Error("bad JSON accepted")
	}
	legacy := ocispec.Descriptor{MediaType: oci.LegacyConfig}
	if oci.KindOf(legacy) != oci.KindConfig {
		t.Error("application/octet-stream config not recognised")
	}
}
