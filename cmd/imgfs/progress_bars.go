package main

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/imgfs/imgfs/fetch"
)

// barProgress redraws one bar per descriptor on a terminal, like ctr's
// table: name, status, and a |+++| bar.
type barProgress struct {
	out io.Writer
	p   *mpb.Progress
	totals

	mu   sync.Mutex
	bars map[digest.Digest]*statusBar
	ref  *statusBar
}

type statusBar struct {
	bar    *mpb.Bar
	status atomic.Value // fetch.Status
}

const nameWidth = 30

func newBarProgress(out io.Writer) *barProgress {
	return &barProgress{
		out:    out,
		p:      mpb.New(mpb.WithOutput(out), mpb.WithWidth(40), mpb.WithRefreshRate(100*time.Millisecond)),
		totals: totals{start: time.Now()},
		bars:   map[digest.Digest]*statusBar{},
	}
}

func (p *barProgress) newBar(name string, total int64) *statusBar {
	sb := &statusBar{}
	sb.status.Store(fetch.StatusWaiting)
	style := mpb.BarStyle().Lbound("|").Filler("+").Tip("+").Padding(" ").Rbound("|")
	// One more than the size, so the bytes alone never complete the bar:
	// it completes when the status is final, and is drawn with it.
	sb.bar = p.p.New(total+1, style,
		mpb.PrependDecorators(
			decor.Name(name+":", decor.WC{W: nameWidth + 2, C: decor.DindentRight}),
			decor.Any(func(decor.Statistics) string { return fmt.Sprint(sb.status.Load()) }, decor.WC{W: 14, C: decor.DindentRight}),
		),
	)
	return sb
}

func (p *barProgress) Resolving(ref string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ref = p.newBar(ref, 0)
	p.ref.status.Store(fetch.StatusResolving)
}

func (p *barProgress) Resolved(ref string, root ocispec.Descriptor) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ref != nil {
		p.ref.status.Store(fetch.StatusResolved)
		p.ref.bar.SetCurrent(1) // the bar's total is 0+1
	}
}

func (p *barProgress) get(desc ocispec.Descriptor) *statusBar {
	p.mu.Lock()
	defer p.mu.Unlock()
	sb, ok := p.bars[desc.Digest]
	if !ok {
		sb = p.newBar(descName(desc), desc.Size)
		p.bars[desc.Digest] = sb
	}
	return sb
}

func (p *barProgress) Status(desc ocispec.Descriptor, status fetch.Status) {
	sb := p.get(desc)
	sb.status.Store(status)
	switch status {
	case fetch.StatusDone, fetch.StatusExists:
		sb.bar.SetCurrent(desc.Size + 1)
	case fetch.StatusFailed:
		sb.bar.Abort(false)
	}
}

func (p *barProgress) Add(desc ocispec.Descriptor, n int64) {
	p.add(n)
	p.get(desc).bar.IncrInt64(n)
}

func (p *barProgress) Finish(err error) {
	p.mu.Lock()
	for _, sb := range p.bars {
		if !sb.bar.Completed() {
			sb.bar.Abort(false)
		}
	}
	if p.ref != nil && !p.ref.bar.Completed() {
		p.ref.bar.Abort(false)
	}
	p.mu.Unlock()
	p.p.Wait()
	if err == nil {
		fmt.Fprintln(p.out, p.summary())
	}
}
