package fusefs

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// fsStats counts what the filesystem did since it was mounted. Blob opens are
// either passthrough opens, which the kernel serves from the cache file
// without asking us, or plain opens, served by READs.
type fsStats struct {
	Opens                uint64 `json:"opens"`
	PassthroughOpens     uint64 `json:"passthrough_opens"`
	PlainOpens           uint64 `json:"plain_opens"`
	Reads                uint64 `json:"reads"`
	ReadBytes            uint64 `json:"read_bytes"`
	ReadErrors           uint64 `json:"read_errors"`
	PassthroughFallbacks uint64 `json:"passthrough_fallbacks"`
	Flushes              uint64 `json:"flushes"` // FLUSHes the kernel sent: one, then none (noflush.go)
	// ViewNodes are the file views' nodes the kernel holds now, below
	// the top of each view (viewforget.go); go-fuse holds those and
	// their parents.
	ViewNodes int64 `json:"view_nodes"`
}

// counters are the live form of fsStats.
type counters struct {
	opens, passthroughOpens      atomic.Uint64
	reads, readBytes, readErrors atomic.Uint64
	passthroughFallbacks         atomic.Uint64
	flushes                      atomic.Uint64
	viewNodes                    atomic.Int64
}

func (c *counters) snapshot() fsStats {
	s := fsStats{
		Opens:                c.opens.Load(),
		PassthroughOpens:     c.passthroughOpens.Load(),
		Reads:                c.reads.Load(),
		ReadBytes:            c.readBytes.Load(),
		ReadErrors:           c.readErrors.Load(),
		PassthroughFallbacks: c.passthroughFallbacks.Load(),
		Flushes:              c.flushes.Load(),
		ViewNodes:            c.viewNodes.Load(),
	}
	s.PlainOpens = s.Opens - min(s.PassthroughOpens, s.Opens)
	return s
}

// passthroughCounter wraps the go-fuse bridge to count the opens that the
// kernel really serves by passthrough: only the OPEN reply says so, after
// go-fuse has tried to register the backing file.
type passthroughCounter struct {
	fuse.RawFileSystem
	stats *counters
}

func (p *passthroughCounter) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	st := p.RawFileSystem.Open(cancel, in, out)
	if st.Ok() && out.OpenFlags&fuse.FOPEN_PASSTHROUGH != 0 {
		p.stats.passthroughOpens.Add(1)
	}
	return st
}

// statsFile is .imgfs/stats.json. Its content is made on open, so it is
// served with FOPEN_DIRECT_IO and reports size 0.
type statsFile struct {
	fs.Inode
	readOnly
	fsys *imageFS
}

var (
	_ = (fs.NodeGetattrer)((*statsFile)(nil))
	_ = (fs.NodeSetattrer)((*statsFile)(nil))
	_ = (fs.NodeOpener)((*statsFile)(nil))
	_ = (fs.NodeReader)((*statsFile)(nil))
)

func (s *statsFile) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	s.fsys.attrs.fill(&out.Attr, 0o444, 0, 1)
	return 0
}

func (s *statsFile) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if writable(flags) {
		return nil, 0, syscall.EROFS
	}
	doc := map[string]any{"fusefs": s.fsys.stats.snapshot()}
	if s.fsys.extraStats != nil {
		doc["cache"] = s.fsys.extraStats()
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		s.fsys.log.Error("encode stats", "err", err)
		return nil, 0, syscall.EIO
	}
	return &statsSnapshot{data: append(b, '\n')}, fuse.FOPEN_DIRECT_IO, 0
}

func (s *statsFile) Read(ctx context.Context, f fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return fuse.ReadResultData(window(f.(*statsSnapshot).data, dest, off)), 0
}

// statsSnapshot is the content of one open of stats.json.
type statsSnapshot struct{ data []byte }
