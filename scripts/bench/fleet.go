package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/imgfs/imgfs/internal/testregistry"
)

// fleetNodes is how many imgfs processes, each with its own cache, read
// the big image at once in scenario 10.
const fleetNodes = 4

// fleetBytesTarget is scenario 10's target through nginx: bytes the origin
// serves ÷ the layer's size. Through distribution there is none: its proxy
// mode pulls a blob it has not cached once per client asking meanwhile.
const fleetBytesTarget = 1.05

// fleetScenario is scenario 10: fleetNodes mounts of the big image, each
// with its own cache, read at once through a cold mirror of the registry,
// for each mirror engine. It reports the bytes the origin served (to the
// mirror and to imgfs directly, when imgfs falls back) ÷ the layer, and
// the fleet's wall time ÷ one node's through a cold mirror of its own.
// Each figure is one run: a run needs fresh mirrors and several GiB.
func (b *bench) fleetScenario() error {
	layer := b.img.bigLayer()
	var errs []error
	for _, kind := range []string{"nginx", "distribution"} {
		one, err := b.fleetOnce(kind, 1)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s, 1 node: %w", kind, err))
			continue
		}
		many, err := b.fleetOnce(kind, fleetNodes)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s, %d nodes: %w", kind, fleetNodes, err))
			continue
		}
		bytesRow := Row{ID: "10", Name: fmt.Sprintf("%d nodes through %s, bytes from the origin", fleetNodes, kind), Unit: unitBytes,
			Value: stat(samples{float64(many.pulled)}), AnchorName: "layer size", Anchor: stat(samples{float64(layer.Size)}),
			Notes: []string{fmt.Sprintf("1 node through a cold %s pulled %s from the origin", kind, format(unitBytes, float64(one.pulled)))}}
		if kind == "nginx" {
			bytesRow.Target = atMost(fleetBytesTarget, ofRatio)
		}
		b.rep.add(bytesRow)
		b.rep.add(Row{ID: "10", Name: fmt.Sprintf("%d nodes through %s, wall", fleetNodes, kind), Unit: unitSeconds,
			Value: stat(samples{many.wall.Seconds()}), AnchorName: "1 node, cold " + kind, Anchor: stat(samples{one.wall.Seconds()})})
	}
	return errors.Join(errs...)
}

// fleetResult is one fleet read: its wall time and the blob bytes the
// origin served.
type fleetResult struct {
	wall   time.Duration
	pulled int64
}

// fleetOnce starts a cold mirror of kind in front of the registry, with a
// counting proxy between them, mounts the big image on n nodes through it
// (falling back to the registry through b.proxy) and reads the layer on
// all of them at once.
func (b *bench) fleetOnce(kind string, n int) (r fleetResult, err error) {
	dir, err := b.dir("fleet-" + kind)
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	up, err := testregistry.NewProxy(b.reg.Host())
	if err != nil {
		return r, err
	}
	defer up.Close()
	var mirrorHost string
	switch kind {
	case "nginx":
		m, err := testregistry.StartNginxMirror(filepath.Join(dir, "nginx"), up.Host())
		if err != nil {
			return r, err
		}
		defer m.Close()
		mirrorHost = m.Host()
	default:
		m, err := testregistry.StartMirror(filepath.Join(dir, "distribution"), up.Host())
		if err != nil {
			return r, err
		}
		defer m.Close()
		mirrorHost = m.Host()
	}
	hostsDir := filepath.Join(dir, "certs.d")
	if err := os.MkdirAll(filepath.Join(hostsDir, b.proxy.Host()), 0o755); err != nil {
		return r, err
	}
	toml := fmt.Sprintf("server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", "http://"+b.proxy.Host(), "http://"+mirrorHost)
	if err := os.WriteFile(filepath.Join(hostsDir, b.proxy.Host(), "hosts.toml"), []byte(toml), 0o644); err != nil {
		return r, err
	}
	layer := b.img.bigLayer()
	var mounts []*mount
	defer func() {
		for _, m := range mounts {
			m.close()
		}
	}()
	for range n {
		cache, err := os.MkdirTemp(dir, "cache-")
		if err != nil {
			return r, err
		}
		m, err := b.mount(b.ref(repoBig+":"+tag, true), cache, "--hosts-dir", hostsDir)
		if err != nil {
			return r, err
		}
		mounts = append(mounts, m)
	}
	up.ResetCounters()
	b.proxy.ResetCounters()
	var cmds []*exec.Cmd
	for _, m := range mounts {
		c, cancel := catCmd(b.ctx, m.blob(layer.Digest))
		defer cancel()
		cmds = append(cmds, c)
	}
	r.wall, err = runAll(cmds)
	r.pulled = up.BlobBytes() + b.proxy.BlobBytes()
	return r, err
}
