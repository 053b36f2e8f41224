package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/fetch"
	"github.com/imgfs/imgfs/internal/oci"
)

// progressReporter is what fetch prints while it works, in ctr's format.
type progressReporter interface {
	fetch.Progress
	Resolving(ref string)
	Resolved(ref string, root ocispec.Descriptor)
	// Finish ends the display and prints the elapsed time and total.
	Finish(err error)
}

// newProgress picks redrawing bars for a terminal, plain lines otherwise,
// and silence with --quiet.
func newProgress(out *os.File, quiet bool) progressReporter {
	if quiet {
		return quietProgress{}
	}
	if fi, err := out.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		return newBarProgress(out)
	}
	return newLineProgress(out)
}

type quietProgress struct{ fetch.NoProgress }

func (quietProgress) Resolving(string)                    {}
func (quietProgress) Resolved(string, ocispec.Descriptor) {}
func (quietProgress) Finish(error)                        {}

// descName names a descriptor as ctr does: kind, digest, cut short.
func descName(desc ocispec.Descriptor) string {
	return string(oci.KindOf(desc)) + "-" + desc.Digest.Algorithm().String() + ":" + desc.Digest.Encoded()[:12] + "…"
}

// totals counts bytes stored and the time since the start.
type totals struct {
	start time.Time
	mu    sync.Mutex
	bytes int64
}

func (t *totals) add(n int64) {
	t.mu.Lock()
	t.bytes += n
	t.mu.Unlock()
}

func (t *totals) summary() string {
	t.mu.Lock()
	n := t.bytes
	t.mu.Unlock()
	elapsed := time.Since(t.start)
	rate := float64(n) / elapsed.Seconds()
	return fmt.Sprintf("elapsed: %.1f s\ttotal: %s (%s/s)", elapsed.Seconds(), humanSize(float64(n)), humanSize(rate))
}

// lineProgress prints one plain line per status change, for logs and
// pipes where redrawing is noise.
type lineProgress struct {
	out io.Writer
	totals
	mu   sync.Mutex
	last map[string]fetch.Status
}

func newLineProgress(out io.Writer) *lineProgress {
	return &lineProgress{out: out, totals: totals{start: time.Now()}, last: map[string]fetch.Status{}}
}

func (p *lineProgress) line(name string, status fetch.Status, size int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last[name] == status {
		return
	}
	p.last[name] = status
	if size >= 0 {
		fmt.Fprintf(p.out, "%s: %s %s\n", name, status, humanSize(float64(size)))
	} else {
		fmt.Fprintf(p.out, "%s: %s\n", name, status)
	}
}

func (p *lineProgress) Resolving(ref string) { p.line(ref, fetch.StatusResolving, -1) }
func (p *lineProgress) Resolved(ref string, root ocispec.Descriptor) {
	p.line(ref, fetch.StatusResolved, -1)
}
func (p *lineProgress) Status(desc ocispec.Descriptor, status fetch.Status) {
	size := int64(-1)
	if status == fetch.StatusDone || status == fetch.StatusExists {
		size = desc.Size
	}
	p.line(descName(desc), status, size)
}
func (p *lineProgress) Add(desc ocispec.Descriptor, n int64) { p.add(n) }
func (p *lineProgress) Finish(err error) {
	if err == nil {
		fmt.Fprintln(p.out, p.summary())
	}
}
