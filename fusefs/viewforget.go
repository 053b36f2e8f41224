package fusefs

import (
	"sync"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// A file view's nodes live only while the kernel holds them. A lookup
// under rootfs/ or a layer tree is answered with an entry timeout of 0,
// so the kernel drops the dentry as soon as nothing uses it (the last
// dput of an expired FUSE dentry deletes it), evicts the inode and sends
// FORGET, and go-fuse then drops its node: after a find over a million
// entries the server holds nodes for what is open or in use, not for every
// name the kernel ever saw. Attributes keep their long timeout while a
// node lives. A path walk through a view asks for each name it does not
// hold (one LOOKUP per component, answered from memory).
//
// go-fuse replaces a 0 timeout by the mount's default, so view lookups
// set viewEntryMark instead, and forgetViews turns it into 0 on the way
// to the kernel. READDIRPLUS is off on mounts with views, as it would hand
// the kernel an entry, and go-fuse a node, for every name listed.

// viewEntryMark is the entry timeout a view's Lookup sets; no other node
// sets it.
const viewEntryMark = time.Nanosecond

// forgetViews sends view lookups to the kernel with an entry timeout of 0,
// and counts the view nodes the kernel holds (stats.json's view_nodes):
// the lookups it was answered, less those it forgot.
type forgetViews struct {
	fuse.RawFileSystem
	stats *counters

	mu   sync.Mutex
	held map[uint64]uint64 // node id → lookups the kernel holds
}

func newForgetViews(raw fuse.RawFileSystem, stats *counters) *forgetViews {
	return &forgetViews{RawFileSystem: raw, stats: stats, held: map[uint64]uint64{}}
}

func (f *forgetViews) Lookup(cancel <-chan struct{}, header *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	st := f.RawFileSystem.Lookup(cancel, header, name, out)
	if out.EntryValid != 0 || out.EntryValidNsec != uint32(viewEntryMark) {
		return st
	}
	out.EntryValidNsec = 0
	if st.Ok() && out.NodeId != 0 {
		f.mu.Lock()
		if f.held[out.NodeId] == 0 {
			f.stats.viewNodes.Add(1)
		}
		f.held[out.NodeId]++
		f.mu.Unlock()
	}
	return st
}

func (f *forgetViews) Forget(nodeid, nlookup uint64) {
	f.mu.Lock()
	if c, ok := f.held[nodeid]; ok {
		if c <= nlookup {
			delete(f.held, nodeid)
			f.stats.viewNodes.Add(-1)
		} else {
			f.held[nodeid] = c - nlookup
		}
	}
	f.mu.Unlock()
	f.RawFileSystem.Forget(nodeid, nlookup)
}
