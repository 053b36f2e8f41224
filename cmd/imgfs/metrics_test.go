package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/imgfs/imgfs/internal/imagemount"
	"github.com/imgfs/imgfs/internal/testregistry"
)

// freeAddress returns a loopback address nothing listens on.
func freeAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// scrape fetches and parses /metrics as Prometheus text.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse as Prometheus text: %v\n%s", err, body)
	}
	return families
}

func metricValue(t *testing.T, families map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	f, ok := families[name]
	if !ok || len(f.Metric) == 0 {
		t.Fatalf("no metric %s", name)
	}
	m := f.Metric[0]
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	t.Fatalf("metric %s has no value", name)
	return 0
}

func TestMetricsDuringAReadMatchTheProxy(t *testing.T) {
	fx := registryFixtures(t)
	img := fx.three[false]
	proxy := testregistry.StartProxy(t, fx.reg.Host())
	cacheDir := t.TempDir()
	addr := freeAddress(t)
	mnt := mount(t, cacheDir, proxy.Host()+"/"+img.Repo+":"+img.Tag, "--plain-http", "--metrics-address", addr, "--log-format", "json")
	// The metrics count what the mount fetches once it serves; the config
	// it needed to mount came before.
	waitFor(t, "the config to be fetched", func() bool {
		_, err := os.Stat(filepath.Join(cacheDir, "blobs", "sha256", img.Config.Digest.Encoded()))
		return err == nil
	})
	if n := metricValue(t, scrape(t, addr), "imgfs_fetched_bytes_total"); n != 0 {
		t.Fatalf("fetched %v bytes before any read", n)
	}
	proxy.ResetCounters()

	large := img.Layers[2]
	cat := exec.Command("sh", "-c", "cat "+blobFile(mnt, large.Digest)+" > /dev/null")
	if err := cat.Start(); err != nil {
		t.Fatal(err)
	}
	during := scrape(t, addr) // while the read runs: it must parse
	for _, name := range []string{"imgfs_fetched_bytes_total", "imgfs_served_bytes_total", "imgfs_range_requests_total",
		"imgfs_range_request_duration_seconds", "imgfs_fetch_retries_total", "imgfs_fetch_errors_total",
		"imgfs_digest_mismatches_total", "imgfs_open_blobs", "imgfs_passthrough_opens_total", "imgfs_cache_size_bytes", "imgfs_evictions_total"} {
		if _, ok := during[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if err := cat.Wait(); err != nil {
		t.Fatalf("cat: %v", err)
	}
	waitFor(t, "the layer to be committed", func() bool {
		_, err := os.Stat(filepath.Join(cacheDir, "blobs", "sha256", large.Digest.Encoded()))
		return err == nil
	})
	waitFor(t, "every blob to be closed", func() bool { return mountStatsOf(t, mnt).Cache.OpenBlobs == 0 })

	after := scrape(t, addr)
	fetched := int64(metricValue(t, after, "imgfs_fetched_bytes_total"))
	if want := proxy.BlobBytes(); fetched != want || fetched < large.Size {
		t.Errorf("imgfs_fetched_bytes_total = %d, the proxy sent %d blob bytes (the layer is %d)", fetched, want, large.Size)
	}
	if n := metricValue(t, after, "imgfs_range_request_duration_seconds"); n != metricValue(t, after, "imgfs_range_requests_total") || n == 0 {
		t.Errorf("the latency histogram has %v samples for %v range requests", n, metricValue(t, after, "imgfs_range_requests_total"))
	}
	if served := metricValue(t, after, "imgfs_served_bytes_total"); served < float64(large.Size) {
		t.Errorf("imgfs_served_bytes_total = %v after reading a %d-byte layer", served, large.Size)
	}
	for _, m := range after["imgfs_fetch_errors_total"].Metric {
		if m.Counter.GetValue() != 0 {
			t.Errorf("fetch errors %v on a clean read", m)
		}
	}
	if len(after["imgfs_fetch_errors_total"].Metric) != len(imagemount.FetchErrorKinds) {
		t.Errorf("the kind label has %d values, want the closed set of %d", len(after["imgfs_fetch_errors_total"].Metric), len(imagemount.FetchErrorKinds))
	}
}
