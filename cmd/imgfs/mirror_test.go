package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/imgfs/imgfs/internal/testfuse"
	"github.com/imgfs/imgfs/internal/testregistry"
)

// mirrorKinds are the mirror engines the tests run in front of the
// origin: distribution in pull-through mode, and nginx caching ranges by
// slices.
var mirrorKinds = []string{"distribution", "nginx"}

// testMirror is a running mirror of upstream, with its access log.
type testMirror struct {
	host      string
	accessLog func() string
	stop      func()
	// cached reports whether the mirror has stored blob hex whole (for
	// distribution, which stores in the background); nil when it does
	// not matter.
	cached func(hex string) bool
}

func startTestMirror(t *testing.T, kind, upstream string) testMirror {
	t.Helper()
	switch kind {
	case "distribution":
		m := testregistry.Mirror(t, upstream)
		return testMirror{host: m.Host(), accessLog: m.Log, stop: func() { m.Close() }, cached: func(hex string) bool {
			_, err := os.Stat(filepath.Join(m.Dir(), "data", "docker", "registry", "v2", "blobs", "sha256", hex[:2], hex, "data"))
			return err == nil
		}}
	default:
		n := testregistry.NginxMirror(t, upstream)
		return testMirror{host: n.Host(), accessLog: n.AccessLog, stop: func() { n.Close() }}
	}
}

// writeHostsDir writes a certs.d for registry naming mirrors to try
// before it, and returns the directory.
func writeHostsDir(t *testing.T, registry string, mirrors ...string) string {
	t.Helper()
	root := t.TempDir()
	var b strings.Builder
	fmt.Fprintf(&b, "server = \"http://%s\"\n", registry)
	for _, m := range mirrors {
		fmt.Fprintf(&b, "\n[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", m)
	}
	dir := filepath.Join(root, registry)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts.toml"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// catBlob reads a blob of the mount whole.
func catBlob(t *testing.T, mnt, hex string) {
	t.Helper()
	run(t, "sh", "-c", "cat "+filepath.Join(mnt, "blobs", "sha256", hex)+" > /dev/null")
}

// TestMountThroughMirrors reads an image through each mirror engine, then
// with the origin stopped once the mirror is warm, then with the mirror
// stopped: the origin serves, directly.
func TestMountThroughMirrors(t *testing.T) {
	fx := registryFixtures(t)
	layer := fx.three[false].Layers[2]
	hex := layer.Digest.Encoded()
	for _, kind := range mirrorKinds {
		t.Run(kind, func(t *testing.T) {
			direct := testregistry.StartProxy(t, fx.reg.Host()) // imgfs → origin
			up := testregistry.StartProxy(t, fx.reg.Host())     // mirror → origin
			mirror := startTestMirror(t, kind, up.Host())
			hostsDir := writeHostsDir(t, direct.Host(), mirror.host)
			ref := direct.Host() + "/three/oci:v1"

			logFile := filepath.Join(t.TempDir(), "mount.log")
			mnt := mount(t, t.TempDir(), ref, "--hosts-dir", hostsDir, "--debug", "--log-file", logFile)
			catBlob(t, mnt, hex)
			// nginx answers every range. distribution answers a blob it has
			// not cached with the whole blob: imgfs takes the ranges near
			// the start from it and the rest from the next host, the origin.
			if got := direct.BlobBytes(); kind == "nginx" && got != 0 || got > layer.Size {
				t.Errorf("through the %s mirror, the origin served %d blob bytes of a %d-byte layer to imgfs directly", kind, got, layer.Size)
			}
			if got := up.BlobBytes(); got < layer.Size {
				t.Errorf("the mirror pulled %d bytes from the origin, want at least the layer's %d", got, layer.Size)
			}
			if log := mirror.accessLog(); !strings.Contains(log, layer.Digest.String()) {
				t.Errorf("the mirror's access log does not show the layer:\n%s", log)
			}
			imgfs(t, nil, "unmount", mnt)
			if data, _ := os.ReadFile(logFile); !strings.Contains(string(data), `host="mirror `+mirror.host+`"`) {
				t.Errorf("--debug does not log the mirror serving:\n%s", data)
			}

			// Warm mirror, origin stopped.
			if mirror.cached != nil {
				waitFor(t, "the mirror to store the layer", func() bool { return mirror.cached(hex) })
			}
			direct.SetFault(testregistry.Down)
			up.SetFault(testregistry.Down)
			mnt = mount(t, t.TempDir(), ref, "--hosts-dir", hostsDir)
			catBlob(t, mnt, hex)
			imgfs(t, nil, "unmount", mnt)
			direct.SetFault(testregistry.None)
			up.SetFault(testregistry.None)

			// Mirror stopped: the origin serves.
			mirror.stop()
			direct.ResetCounters()
			mnt = mount(t, t.TempDir(), ref, "--hosts-dir", hostsDir)
			catBlob(t, mnt, hex)
			if got := direct.BlobBytes(); got < layer.Size {
				t.Errorf("with the mirror stopped the origin served %d bytes, want the layer's %d", got, layer.Size)
			}
		})
	}
}

// fleetNodes is how many imgfs processes, each with its own cache, read
// the fleet image at once.
const fleetNodes = 4

// fleetLayerSize is the fleet image's one layer: 128 MiB rather than the
// 256 MiB of the issue, to keep the test short under -race; the ratios do
// not depend on the size.
const fleetLayerSize = 128 << 20

var (
	fleetOnce   sync.Once
	fleetPushed map[string]testregistry.Pushed
	fleetErr    error
)

// fleetImages pushes (once) the fleet image and a smaller one a single
// cold client reads through distribution, to measure what one costs.
func fleetImages(t *testing.T, fx *fixtures) map[string]testregistry.Pushed {
	t.Helper()
	fleetOnce.Do(func() {
		fleetPushed = map[string]testregistry.Pushed{}
		for _, img := range []struct {
			repo string
			seed int64
			size int64
		}{{"fleet", 256, fleetLayerSize}, {"solo", 257, 32 << 20}} {
			fleetPushed[img.repo], fleetErr = fx.reg.PushImage(img.repo, "v1", testregistry.Image{Layers: []testregistry.Layer{
				testregistry.TarLayer(testregistry.Uncompressed, testregistry.RandomFile("blob.bin", img.seed, img.size)),
			}})
			if fleetErr != nil {
				return
			}
		}
	})
	if fleetErr != nil {
		t.Fatal(fleetErr)
	}
	return fleetPushed
}

// readFleet mounts repo on n nodes through the mirror and reads its layer
// on all of them at once. It returns the blob bytes the origin served,
// to the mirror and to imgfs directly.
func readFleet(t *testing.T, fx *fixtures, kind string, pushed testregistry.Pushed, repo string, n int) int64 {
	t.Helper()
	direct := testregistry.StartProxy(t, fx.reg.Host())
	up := testregistry.StartProxy(t, fx.reg.Host())
	mirror := startTestMirror(t, kind, up.Host())
	hostsDir := writeHostsDir(t, direct.Host(), mirror.host)
	hex := pushed.Layers[0].Digest.Encoded()
	var mnts []string
	for i := 0; i < n; i++ {
		mnts = append(mnts, mount(t, t.TempDir(), direct.Host()+"/"+repo+":v1", "--hosts-dir", hostsDir))
	}
	config := up.BlobBytes() + direct.BlobBytes()
	var scripts []string
	for _, mnt := range mnts {
		scripts = append(scripts, "cat "+filepath.Join(mnt, "blobs", "sha256", hex)+" > /dev/null")
	}
	runReaders(t, scripts)
	return up.BlobBytes() + direct.BlobBytes() - config
}

// TestFleetThroughMirrors reads one image on fleetNodes imgfs processes
// at once through each mirror. nginx's slice cache lets the origin serve
// each byte about once; distribution's proxy mode pulls a blob it has not
// cached for every client asking meanwhile, so through it the fleet may
// cost no more per node than one cold client does alone.
func TestFleetThroughMirrors(t *testing.T) {
	testfuse.Require(t)
	fx := registryFixtures(t)
	imgs := fleetImages(t, fx)
	size := float64(fleetLayerSize)

	t.Run("nginx", func(t *testing.T) {
		got := readFleet(t, fx, "nginx", imgs["fleet"], "fleet", fleetNodes)
		ratio := float64(got) / size
		t.Logf("nginx: %d nodes pulled %.2f× the layer from the origin", fleetNodes, ratio)
		if ratio > 1.05 {
			t.Errorf("through nginx the origin served %d bytes, %.2f× the layer; want at most 1.05×", got, ratio)
		}
	})
	t.Run("distribution", func(t *testing.T) {
		solo := imgs["solo"]
		one := float64(readFleet(t, fx, "distribution", solo, "solo", 1)) / float64(solo.Layers[0].Size)
		got := readFleet(t, fx, "distribution", imgs["fleet"], "fleet", fleetNodes)
		ratio := float64(got) / size
		t.Logf("distribution: one cold client pulled %.2f× the layer from the origin; %d nodes pulled %.2f× (%.2f× per node)",
			one, fleetNodes, ratio, ratio/fleetNodes)
		if ratio/fleetNodes > one*1.05 {
			t.Errorf("through distribution each of %d nodes cost the origin %.2f× the layer, more than one cold client's %.2f×", fleetNodes, ratio/fleetNodes, one)
		}
	})
}
