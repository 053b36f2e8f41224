package indexpush

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/fetch"
	"github.com/imgfs/imgfs/internal/layer"
	"github.com/imgfs/imgfs/internal/layer/ztoc"
	"github.com/imgfs/imgfs/internal/soci"
	"github.com/imgfs/imgfs/internal/testregistry"
)

// Small sizes keep the tests' layers small: spans of 64 KiB (the least
// Push accepts) and layers of 256 KiB and more qualify.
const (
	testSpan     = MinSpanSize
	testMinLayer = 256 << 10
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newRemote returns a client for host/repo:tag (tag may be a digest),
// with credentials given so the developer's docker config stays out.
func newRemote(t *testing.T, host, repo, tag string) *fetch.Remote {
	t.Helper()
	ref, err := fetch.ParseReference(host + "/" + repo + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	r, err := fetch.NewRemote(ref, fetch.RemoteOptions{TransportOptions: fetch.TransportOptions{PlainHTTP: true}, Username: "user", Password: "pass"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func openStore(t *testing.T) *cache.Store {
	t.Helper()
	s, err := cache.Open(t.TempDir(), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// push runs Push on host/repo:tag with the tests' sizes, and returns the
// result and the layers it reported.
func push(t *testing.T, store *cache.Store, host, repo, tag string, opts Options) (*Result, []LayerReport, error) {
	t.Helper()
	if opts.SpanSize == 0 {
		opts.SpanSize = testSpan
	}
	if opts.MinLayerSize == 0 {
		opts.MinLayerSize = testMinLayer
	}
	var reports []LayerReport
	opts.OnLayer = func(r LayerReport) { reports = append(reports, r) }
	res, err := Push(testContext(t), newRemote(t, host, repo, tag), store, opts)
	return res, reports, err
}

// getBlob reads a blob straight from the registry and checks its digest.
func getBlob(t *testing.T, r *fetch.Remote, d ocispec.Descriptor) []byte {
	t.Helper()
	rc, err := r.Fetch(testContext(t), d)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if digest.FromBytes(data) != d.Digest {
		t.Fatalf("blob %s: bytes hash to %s", d.Digest, digest.FromBytes(data))
	}
	return data
}

// readIndex reads and parses the SOCI index d from the registry.
func readIndex(t *testing.T, reg *testregistry.Registry, repo string, d digest.Digest) *soci.Index {
	t.Helper()
	_, data, err := reg.GetManifest(repo, d.String())
	if err != nil {
		t.Fatal(err)
	}
	x, err := soci.Parse(data)
	if err != nil {
		t.Fatalf("soci.Parse(index %s) = %v\n%s", d, err, data)
	}
	return x
}

// checkZtocReadsLayer fetches z's zTOC, parses it as a reader would, and
// reads every regular file of the layer through it: each must equal the
// file as the test wrote it.
func checkZtocReadsLayer(t *testing.T, r *fetch.Remote, z soci.Ztoc, l ocispec.Descriptor, files []testregistry.File) {
	t.Helper()
	if z.Layer != l.Digest || z.LayerMediaType != l.MediaType {
		t.Errorf("zTOC lists layer %s (%s), want %s (%s)", z.Layer, z.LayerMediaType, l.Digest, l.MediaType)
	}
	toc, err := ztoc.Parse(getBlob(t, r, z.Desc), ztoc.Limits{})
	if err != nil {
		t.Fatalf("ztoc.Parse = %v", err)
	}
	if toc.SpanSize != testSpan {
		t.Errorf("zTOC span size %d, want %d", toc.SpanSize, testSpan)
	}
	blob := getBlob(t, r, l)
	src := &countingBlob{data: blob}
	zl, err := ztoc.NewLayer(toc, l.Size, src)
	if err != nil {
		t.Fatalf("ztoc.NewLayer = %v", err)
	}
	want := map[string][]byte{}
	for _, f := range files {
		content, _ := io.ReadAll(f.Content())
		want[f.Name] = content
	}
	idx := zl.Index()
	for i, e := range idx.Entries {
		if e.Type != layer.TypeRegular {
			continue
		}
		w, ok := want[e.Name]
		if !ok {
			t.Errorf("zTOC lists %s, which the layer does not have", e.Name)
			continue
		}
		delete(want, e.Name)
		got := make([]byte, e.Size)
		n, err := zl.ReadFile(testContext(t), i, got, 0)
		if err != nil && err != io.EOF {
			t.Fatalf("ReadFile(%s) = %v", e.Name, err)
		}
		if !bytes.Equal(got[:n], w) {
			t.Errorf("%s read through the zTOC: %d bytes differing from the %d in the layer", e.Name, n, len(w))
		}
	}
	for name := range want {
		t.Errorf("zTOC lacks %s", name)
	}
}

// countingBlob serves a layer blob from memory.
type countingBlob struct {
	data []byte
}

func (b *countingBlob) ReadAt(_ context.Context, p []byte, off int64) (int, error) {
	if off >= int64(len(b.data)) {
		return 0, io.EOF
	}
	n := copy(p, b.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// decode unmarshals JSON or fails the test.
func decode(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
}

// cacheWithTimeout is a cache whose reads give up after 5 s without bytes.
func cacheWithTimeout(t *testing.T) (*cache.Store, error) {
	s, err := cache.Open(t.TempDir(), cache.Options{FetchTimeout: 5 * time.Second})
	if err == nil {
		t.Cleanup(func() { s.Close() })
	}
	return s, err
}

// mustJSON marshals v or fails the test.
func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
