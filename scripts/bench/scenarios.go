package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// scenario is one numbered benchmark. Scenario 7 (peak RSS) is measured
// during scenario 3's reads and reported with them.
type scenario struct {
	id    string
	title string
	run   func(*bench) error
}

// scenarios run in this order: later ones use earlier ones' results as
// anchors (2 uses 1's skopeo time, 4 uses 3's cache, 6 uses 3's proxied
// time).
var scenarios = []scenario{
	{"1", "fetch, cold cache (vs curl -o; skopeo, ctr)", (*bench).fetchScenario},
	{"2", "mount readiness, 512 MiB image (vs skopeo copy)", (*bench).readyScenario},
	{"3", "cold sequential read through the mount (vs curl -o), bytes pulled, with peak RSS (7)", (*bench).coldReadScenario},
	{"4", "warm sequential read through the mount (vs the cache file)", (*bench).warmReadScenario},
	{"5", "100 random 4 KiB reads of a cold layer", (*bench).randomReadScenario},
	{"6", "8 concurrent cold readers (vs 1 reader)", (*bench).concurrentScenario},
	{"8", "mount readiness of many manifests and many layers (vs 1 layer)", (*bench).manyReadyScenario},
	{"9", "file views: eStargz first byte, gzip index pass, warm rootfs read", (*bench).viewScenario},
	{"10", "a fleet of 4 nodes through a mirror (nginx, distribution): origin bytes, wall vs 1 node", (*bench).fleetScenario},
	{"11", "SOCI: cold small-file read on a SOCI-indexed gzip image (vs --index=none, curl -o), bytes pulled, index push", (*bench).sociScenario},
	{"12", "a million-entry gzip layer: index pass (vs curl | gunzip | tar -t), peak RSS after ls and find rootfs", (*bench).manyEntriesScenario},
}

// Targets, as ratios to the anchor unless they say otherwise.
const (
	fetchTarget       = 1.25    // 1: imgfs fetch ÷ curl -o
	readyTarget       = 0.05    // 2: mount ready ÷ skopeo copy
	coldReadTarget    = 1.25    // 3: cold cat through the mount ÷ curl -o, no proxy
	coldBytesTarget   = 1.05    // 3: bytes pulled by one cold cat ÷ blob size
	warmReadTarget    = 0.9     // 4: throughput through the mount ÷ reading the cache file
	randomReadTarget  = 2 << 20 // 5: bytes pulled per 4 KiB read (a value)
	sharedBytesTarget = 1.05    // 6: bytes pulled by 8 readers ÷ blob size
	sharedWallTarget  = 1.5     // 6: wall time of 8 readers ÷ one reader
	rssTarget         = 100 << 20
	manyReadyTarget   = 2 // 8: readiness ÷ readiness of a 1-layer image
)

// fetchScenario is scenario 1: imgfs fetch of the big image into a fresh
// cache against curl -o of its layer, with curl -o + sync, skopeo copy and
// ctr content fetch of the same image for context; then the same for the
// realistic image (1r), which has no target.
func (b *bench) fetchScenario() error {
	big := b.ref(repoBig+":"+tag, false)
	layer := b.img.bigLayer()
	curl := &contender{name: "curl -o", runs: b.cfg.runs, run: func() (time.Duration, error) {
		return b.curl(b.reg.Host(), repoBig, false, layer)
	}}
	fetch := &contender{name: "imgfs fetch", runs: b.cfg.runs, run: func() (time.Duration, error) { return b.fetch(big) }}
	curlSync := &contender{name: "curl -o + sync", runs: b.cfg.runs, run: func() (time.Duration, error) {
		return b.curl(b.reg.Host(), repoBig, true, layer)
	}}
	skopeo := &contender{name: "skopeo copy", runs: b.cfg.slowRuns, run: func() (time.Duration, error) { return b.skopeo(big) }}
	ctr := &contender{name: "ctr content fetch", runs: b.cfg.slowRuns, run: func() (time.Duration, error) { return b.ctrFetch(big) }}
	inTurns(curl, fetch, curlSync, skopeo, ctr)

	b.skopeoBig = skopeo.s
	b.rep.add(Row{ID: "1", Name: "fetch 512 MiB, cold", Unit: unitSeconds, Value: stat(fetch.s),
		AnchorName: curl.name, Anchor: stat(curl.s), Target: atMost(fetchTarget, ofRatio),
		Notes: []string{"imgfs fsyncs the blob before committing it; curl -o does not (see curl -o + sync below)"}})
	b.rep.add(toolRow("1", "curl -o + sync of the file, 512 MiB", "curl", curlSync, curl))
	b.rep.add(toolRow("1", "skopeo copy 512 MiB", "skopeo", skopeo, curl))
	b.rep.add(toolRow("1", "ctr content fetch 512 MiB", "ctr", ctr, curl))
	return errors.Join(curl.err, fetch.err, curlSync.err, skopeo.err, ctr.err, b.realisticFetch())
}

// toolRow is the row of another tool than imgfs, measured against anchor:
// n/a with the reason when the tool is not installed.
func toolRow(id, name, tool string, c, anchor *contender) Row {
	row := Row{ID: id, Name: name, Tool: tool, Unit: unitSeconds, Value: stat(c.s), AnchorName: anchor.name, Anchor: stat(anchor.s)}
	if c.na != nil {
		row.NA = c.na.Error()
	}
	return row
}

// realisticFetch is scenario 1r: imgfs fetch of the six-layer gzip image
// against curl -o of its config and layers in one curl process, plus skopeo.
func (b *bench) realisticFetch() error {
	ref := b.ref(repoRealistic+":"+tag, false)
	blobs := append([]ocispec.Descriptor{b.img.realistic.Config}, b.img.realistic.Layers...)
	curl := &contender{name: "curl -o", runs: b.cfg.runs, run: func() (time.Duration, error) {
		return b.curl(b.reg.Host(), repoRealistic, false, blobs...)
	}}
	fetch := &contender{name: "imgfs fetch", runs: b.cfg.runs, run: func() (time.Duration, error) { return b.fetch(ref) }}
	skopeo := &contender{name: "skopeo copy", runs: b.cfg.slowRuns, run: func() (time.Duration, error) { return b.skopeo(ref) }}
	inTurns(curl, fetch, skopeo)

	var size int64
	for _, l := range b.img.realistic.Layers {
		size += l.Size
	}
	name := fmt.Sprintf("fetch %d-layer gzip image (%.0f MiB), cold", len(b.img.realistic.Layers), float64(size)/(1<<20))
	b.rep.add(Row{ID: "1r", Name: name, Unit: unitSeconds, Value: stat(fetch.s), AnchorName: curl.name, Anchor: stat(curl.s),
		Notes: []string{"no target; curl fetches the config and layers one after another on one connection"}})
	b.rep.add(toolRow("1r", "skopeo copy of the same image", "skopeo", skopeo, curl))
	return errors.Join(curl.err, fetch.err, skopeo.err)
}

// readyScenario is scenario 2: from running imgfs mount (cold cache, big
// image) until index.json is read, against skopeo copy of the image, the
// wait before an image is usable without imgfs.
func (b *bench) readyScenario() error {
	var ready samples
	for range b.cfg.runs {
		d, err := b.readiness(b.ref(repoBig+":"+tag, false))
		if err != nil {
			return err
		}
		ready = append(ready, d.Seconds())
	}
	b.rep.add(Row{ID: "2", Name: "mount ready, 512 MiB image, cold", Unit: unitSeconds, Value: stat(ready),
		AnchorName: "skopeo copy", Anchor: stat(b.skopeoBig), Target: atMost(readyTarget, ofRatio),
		Notes: []string{"from running imgfs mount --background until index.json has been read; the anchor is scenario 1's"}})
	return nil
}

// readiness mounts ref on a fresh cache, unmounts it, and returns how long
// the mount took to become ready.
func (b *bench) readiness(ref string, extra ...string) (time.Duration, error) {
	cache, err := b.dir("cache")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(cache)
	m, err := b.mount(ref, cache, extra...)
	if err != nil {
		return 0, err
	}
	return m.ready, m.close()
}

// coldRead is what one cold read of the big layer through a mount measured.
type coldRead struct {
	wall     time.Duration
	pulled   int64 // blob bytes through the proxy (counting run only)
	settled  bool  // whether the proxy's count stopped growing (counting run only)
	requests int64 // range requests, from stats.json
	rss      int64 // the server's peak RSS
	// The server's CPU time (user+sys) from the start of the cat to its
	// end, and to the commit: what the read costs, and how much of it the
	// read had to wait for.
	cpuRead, cpuAll time.Duration
	// The machine during the cat: busy CPU time on all CPUs, the
	// registry's share, the counting proxy's, and cat's own.
	machine, registry, proxy, cat time.Duration
}

// coldReadWay is how one of scenario 3's cold reads reaches the registry,
// and whether it counts what it pulls.
type coldReadWay struct {
	proxied bool // through the counting proxy
	count   bool // wait for the proxy's byte count to settle (proxied only)
}

// Scenario 3's three kinds of cold read. The proxy runs in the bench
// process on the same two CPUs, which curl -o leaves room for and the cold
// cat does not, so a ratio taken through it weighs the proxy as much as
// imgfs: the headline is timed without it, the bytes are counted through
// it in a run timed against nothing, and the proxied timing stays as
// information, and as the anchor of scenario 6, whose readers go through
// the proxy too.
var (
	noProxy      = coldReadWay{}
	throughProxy = coldReadWay{proxied: true}
	countingRun  = coldReadWay{proxied: true, count: true}
)

// coldCountQuiet is how long the proxy's count must stand still before the
// counting run takes it, so that requests still in flight at the commit
// are counted.
const coldCountQuiet = 300 * time.Millisecond

// coldReadScenario is scenario 3 (and 7): `cat` of the big layer through a
// fresh mount on a fresh cache, against curl -o of the same blob, both
// straight from the registry (the headline) and both through the counting
// proxy (information); and, in a cold cat of its own, the bytes one cold
// cat pulls. It keeps the last direct run's cache, which then holds the
// committed layer, for scenario 4.
func (b *bench) coldReadScenario() error {
	layer := b.img.bigLayer()
	// The counting run goes first, so that every timed curl -o after it
	// follows a cold cat alike.
	counted, err := b.coldReadOnce(countingRun, false)
	if err != nil {
		return err
	}
	direct, proxied, err := b.coldReadPairs()
	if err != nil {
		return err
	}
	b.coldCatProxied = proxied.wall
	b.rep.add(Row{ID: "3", Name: "cold cat of 512 MiB via the mount", Unit: unitSeconds, Value: stat(direct.wall),
		AnchorName: "curl -o", Anchor: stat(direct.curl), Target: atMost(coldReadTarget, ofRatio), Notes: direct.headlineNotes()})
	b.rep.add(coldBytesRow(counted, layer.Size))
	b.rep.add(Row{ID: "3", Name: "cold cat of 512 MiB via the mount, through the counting proxy (information)", Unit: unitSeconds,
		Value: stat(proxied.wall), AnchorName: "curl -o, same proxy", Anchor: stat(proxied.curl),
		Notes: append([]string{"no target: the proxy runs in the bench process on the same CPUs, which curl -o leaves room for and the cold cat does not; the headline row is without it",
			"scenario 6's readers go through the proxy too, and compare against this row"},
			proxied.cpuNotes(true)...)})
	// Peak RSS from the headline's runs: what the server holds does not
	// depend on the proxy, and these are the runs the table stands on.
	b.rep.add(Row{ID: "7", Name: "peak RSS of the server in scenario 3, no proxy", Unit: unitBytes, Value: stat(direct.rss),
		Target: atMost(rssTarget, ofValue), Notes: []string{fmt.Sprintf("from the %d timed cold cats without the proxy: largest %s; through the proxy, median %s",
			len(direct.rss), format(unitBytes, direct.rss.percentile(100)), format(unitBytes, proxied.rss.median()))}})
	return nil
}

// coldReadPairs times curl -o and then a cold cat, through the proxy and
// without it, in turns, so that a load spike on the shared machine hits
// both kinds alike. The last direct run's cache is kept (b.warmCache).
func (b *bench) coldReadPairs() (direct, proxied coldReadSamples, err error) {
	layer := b.img.bigLayer()
	for i := range b.cfg.runs {
		for _, way := range []coldReadWay{throughProxy, noProxy} {
			host, into := b.reg.Host(), &direct
			if way.proxied {
				host, into = b.proxy.Host(), &proxied
			}
			cu, win, err := b.curlUsage(host, repoBig, false, layer)
			if err != nil {
				return direct, proxied, err
			}
			r, err := b.coldReadOnce(way, !way.proxied && i == b.cfg.runs-1)
			if err != nil {
				return direct, proxied, err
			}
			into.add(cu, win, r)
		}
	}
	return direct, proxied, nil
}

// coldBytesRow is scenario 3's bytes row: what the counting run pulled,
// against the blob's size. One cold cat should pull the blob once.
func coldBytesRow(r coldRead, size int64) Row {
	notes := []string{fmt.Sprintf("one cold cat of its own through the counting proxy, untimed and outside the timed turns; "+
		"counted after the commit, once the proxy was quiet for %.1f s; %d range requests", coldCountQuiet.Seconds(), r.requests)}
	if !r.settled {
		notes = append(notes, "the server was still fetching 10 s after the read")
	}
	return Row{ID: "3", Name: "cold cat, bytes pulled", Unit: unitBytes, Value: stat(samples{float64(r.pulled)}),
		AnchorName: "blob size", Anchor: stat(samples{float64(size)}), Target: atMost(coldBytesTarget, ofRatio), Notes: notes}
}

// coldReadSamples collects scenario 3's runs of one kind, through the
// proxy or not: the cold cat's and curl -o's times, where the CPUs' time
// went during each, and what the server did.
type coldReadSamples struct {
	wall, curl                                  samples
	imgfs, imgfsAll                             samples // until the cat ended, until the commit
	catBusy, catRegistry, catProxy, catSelf     samples
	curlBusy, curlRegistry, curlProxy, curlSelf samples
	requests, rss                               samples
}

func (s *coldReadSamples) add(cu usage, win *cpuWindow, r coldRead) {
	s.wall, s.curl = append(s.wall, r.wall.Seconds()), append(s.curl, cu.wall.Seconds())
	s.imgfs, s.imgfsAll = append(s.imgfs, r.cpuRead.Seconds()), append(s.imgfsAll, r.cpuAll.Seconds())
	s.catBusy, s.catRegistry = append(s.catBusy, r.machine.Seconds()), append(s.catRegistry, r.registry.Seconds())
	s.catProxy, s.catSelf = append(s.catProxy, r.proxy.Seconds()), append(s.catSelf, r.cat.Seconds())
	s.curlBusy, s.curlRegistry = append(s.curlBusy, win.busy.Seconds()), append(s.curlRegistry, win.registry.Seconds())
	s.curlProxy, s.curlSelf = append(s.curlProxy, win.proxy.Seconds()), append(s.curlSelf, cu.cpu.Seconds())
	s.requests, s.rss = append(s.requests, float64(r.requests)), append(s.rss, float64(r.rss))
}

// headlineNotes are the notes of scenario 3's headline row: where the
// bytes are counted, the server's CPU and range requests per cold cat, and
// the CPU budgets.
func (s *coldReadSamples) headlineNotes() []string {
	return append([]string{
		"imgfs and curl -o both talk to the registry directly; the bytes pulled are counted in a run of their own (cold cat, bytes pulled)",
		fmt.Sprintf("server CPU (user+sys) per cold cat, median: %.2f s until the cat ended, %.2f s until the blob was committed",
			s.imgfs.median(), s.imgfsAll.median()),
		fmt.Sprintf("median of %.0f range requests per cold cat", s.requests.median()),
	}, s.cpuNotes(false)...)
}

// cpuNotes are the CPU budgets of the cold cat and of curl -o, with the
// proxy's share when it was in the path, and the cold cat's CPU floor.
func (s *coldReadSamples) cpuNotes(viaProxy bool) []string {
	catNames, catEach := []string{"imgfs", "registry", "cat"}, []samples{s.imgfs, s.catRegistry, s.catSelf}
	curlNames, curlEach := []string{"registry", "curl"}, []samples{s.curlRegistry, s.curlSelf}
	if viaProxy {
		catNames, catEach = []string{"imgfs", "registry", "proxy", "cat"}, []samples{s.imgfs, s.catRegistry, s.catProxy, s.catSelf}
		curlNames, curlEach = []string{"registry", "proxy", "curl"}, []samples{s.curlRegistry, s.curlProxy, s.curlSelf}
	}
	return []string{
		cpuBudget("cold cat", s.catBusy, s.wall, catNames, catEach...),
		cpuBudget("curl -o", s.curlBusy, s.curl, curlNames, curlEach...),
		cpuFloor(s.catBusy, s.curl),
	}
}

// coldReadOnce runs one cold read for scenario 3, the way way says. With
// keep set the cache survives, in b.warmCache.
func (b *bench) coldReadOnce(way coldReadWay, keep bool) (r coldRead, err error) {
	layer := b.img.bigLayer()
	cache, err := b.dir("cache")
	if err != nil {
		return r, err
	}
	defer func() {
		if keep && err == nil {
			b.warmCache = cache
		} else {
			os.RemoveAll(cache)
		}
	}()
	m, err := b.mount(b.ref(repoBig+":"+tag, way.proxied), cache)
	if err != nil {
		return r, err
	}
	defer m.close()
	b.proxy.ResetCounters()
	cpu0, err := m.cpuTime()
	if err != nil {
		return r, err
	}
	win := startCPUWindow(b.reg.Pid())
	u, err := runCmdUsage(b.ctx, transferTimeout, nil, "cat", m.blob(layer.Digest))
	if err != nil {
		return r, m.fail(err)
	}
	cpuEnd, err := m.cpuTime()
	if err != nil {
		return r, err
	}
	if err := win.stop(); err != nil {
		return r, err
	}
	r.wall, r.cat, r.machine, r.registry, r.proxy = u.wall, u.cpu, win.busy, win.registry, win.proxy
	if err := b.waitCommitted(cache, layer.Digest); err != nil {
		return r, err
	}
	cpuAll, err := m.cpuTime()
	if err != nil {
		return r, err
	}
	r.cpuRead, r.cpuAll = cpuEnd-cpu0, cpuAll-cpu0
	if way.count {
		r.pulled, r.settled = quietBytes(b.ctx, b.proxy, coldCountQuiet, 10*time.Second)
	}
	st, err := m.stats()
	if err != nil {
		return r, err
	}
	r.requests = st.Cache.RangeRequests
	if r.rss, err = m.peakRSS(); err != nil {
		return r, err
	}
	return r, m.close()
}

// warmReadScenario is scenario 4: once the layer is committed to the cache
// (by scenario 3), a fresh mount of that cache should hand reads to the
// kernel (FUSE passthrough) and read as fast as the cache file itself. It
// measures page-cached reads, and cold-disk reads with the page cache of
// those two files (only) dropped before each read.
func (b *bench) warmReadScenario() error {
	if b.warmCache == "" {
		return errors.New("needs the cache scenario 3 leaves behind: run scenario 3 too")
	}
	layer := b.img.bigLayer()
	file := cachedBlob(b.warmCache, layer.Digest)
	m, err := b.mount(b.ref(repoBig+":"+tag, false), b.warmCache)
	if err != nil {
		return err
	}
	defer m.close()
	via := m.blob(layer.Digest)
	size := float64(layer.Size)

	// read times one cat of path; with drop set, both files leave the page
	// cache first.
	read := func(path string, drop bool) (time.Duration, error) {
		if drop {
			if err := errors.Join(dropPageCache(file), dropPageCache(via)); err != nil {
				return 0, err
			}
		}
		return timeCat(b.ctx, path)
	}
	// measure reads the mount's file and the cache file in turns, swapping
	// which goes first every round, and returns their throughputs.
	measure := func(drop bool) (mnt, direct samples, err error) {
		// Untimed reads first, so that every timed read finds the same
		// state: pages cached or, with drop, the virtual disk's own cache
		// as warm as it gets (the first read after a drop is always slow).
		for _, p := range []string{via, file} {
			if _, err := read(p, drop); err != nil {
				return nil, nil, err
			}
		}
		for i := range b.cfg.runs {
			order := []struct {
				path string
				s    *samples
			}{{via, &mnt}, {file, &direct}}
			if i%2 == 1 {
				slices.Reverse(order)
			}
			for _, p := range order {
				d, err := read(p.path, drop)
				if err != nil {
					return nil, nil, err
				}
				*p.s = append(*p.s, size/d.Seconds())
			}
		}
		return mnt, direct, nil
	}
	cachedMnt, cachedDirect, err := measure(false)
	if err != nil {
		return err
	}
	coldMnt, coldDirect, err := measure(true)
	if err != nil {
		return err
	}
	st, err := m.stats()
	if err != nil {
		return err
	}
	passthrough := fmt.Sprintf("passthrough opens: %d of %d opens", st.Fusefs.PassthroughOpens, st.Fusefs.Opens)
	b.rep.add(Row{ID: "4", Name: "warm read 512 MiB via the mount, page-cached", Unit: unitThroughput, Value: stat(cachedMnt),
		AnchorName: "cat of the cache file", Anchor: stat(cachedDirect), Target: atLeast(warmReadTarget, ofRatio),
		Notes: []string{passthrough}})
	b.rep.add(Row{ID: "4", Name: "warm read 512 MiB via the mount, cold disk", Unit: unitThroughput, Value: stat(coldMnt),
		AnchorName: "cat of the cache file", Anchor: stat(coldDirect), Target: atLeast(warmReadTarget, ofRatio),
		Notes: []string{"the page cache of the blob file and of the mount's file (only) is dropped with fadvise DONTNEED before each read; the virtual disk's host may still cache it"}})
	return m.close()
}

// randomReads is how many 4 KiB reads scenario 5 makes, and randomSeed
// fixes their offsets.
const (
	randomReads = 100
	randomSeed  = 5
)

// randomReadScenario is scenario 5: 100 preads of 4 KiB at fixed random
// offsets in the cold big layer, through the proxy: how many bytes each
// read costs the registry, and how long each takes.
func (b *bench) randomReadScenario() error {
	size := b.img.bigLayer().Size
	rng := rand.New(rand.NewPCG(randomSeed, randomSeed))
	offsets := make([]int64, randomReads)
	for i := range offsets {
		offsets[i] = rng.Int64N(size/4096) * 4096
	}
	var perRead, p50, p99, requests samples
	unsettled := 0
	for range b.cfg.runs {
		lat, pulled, reqs, settled, err := b.randomReadOnce(offsets)
		if err != nil {
			return err
		}
		perRead = append(perRead, float64(pulled)/randomReads)
		p50 = append(p50, lat.percentile(50))
		p99 = append(p99, lat.percentile(99))
		requests = append(requests, float64(reqs))
		if !settled {
			unsettled++
		}
	}
	notes := []string{fmt.Sprintf("median of %.0f blob requests for the %d reads; bytes counted at the proxy until it was quiet for 0.5 s", requests.median(), randomReads)}
	if unsettled > 0 {
		notes = append(notes, fmt.Sprintf("in %d runs the server was still fetching 10 s after the reads", unsettled))
	}
	b.rep.add(Row{ID: "5", Name: "random 4 KiB read, bytes pulled per read", Unit: unitBytes, Value: stat(perRead),
		Target: atMost(randomReadTarget, ofValue), Notes: notes})
	b.rep.add(Row{ID: "5", Name: "random 4 KiB read, p50 latency", Unit: unitSeconds, Value: stat(p50)})
	b.rep.add(Row{ID: "5", Name: "random 4 KiB read, p99 latency", Unit: unitSeconds, Value: stat(p99)})
	return nil
}

// randomReadOnce makes the reads of scenario 5 on a fresh mount and cache
// and returns their latencies and what they pulled from the registry.
func (b *bench) randomReadOnce(offsets []int64) (lat samples, pulled, requests int64, settled bool, err error) {
	cache, err := b.dir("cache")
	if err != nil {
		return nil, 0, 0, false, err
	}
	defer os.RemoveAll(cache)
	m, err := b.mount(b.ref(repoBig+":"+tag, true), cache)
	if err != nil {
		return nil, 0, 0, false, err
	}
	defer m.close()
	b.proxy.ResetCounters()
	f, err := os.Open(m.blob(b.img.bigLayer().Digest))
	if err != nil {
		return nil, 0, 0, false, err
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for _, off := range offsets {
		start := time.Now()
		if _, err := f.ReadAt(buf, off); err != nil {
			return nil, 0, 0, false, m.fail(fmt.Errorf("pread at %d: %w", off, err))
		}
		lat = append(lat, time.Since(start).Seconds())
	}
	pulled, settled = quietBytes(b.ctx, b.proxy, 500*time.Millisecond, 10*time.Second)
	return lat, pulled, b.proxy.BlobRequests(), settled, errors.Join(f.Close(), m.close())
}

// readers is how many concurrent readers scenario 6 starts.
const readers = 8

// concurrentScenario is scenario 6: 8 cat processes started together on the
// big layer of a fresh mount, through the proxy. They should share one
// download (bytes pulled about the blob size) and finish in about the time
// one reader takes: scenario 3's cold cat through the proxy, which pays
// for the proxy's CPU as they do.
func (b *bench) concurrentScenario() error {
	layer := b.img.bigLayer()
	var wall, pulled, rss samples
	for range b.cfg.runs {
		r, err := b.concurrentOnce()
		if err != nil {
			return err
		}
		wall = append(wall, r.wall.Seconds())
		pulled = append(pulled, float64(r.pulled))
		rss = append(rss, float64(r.rss))
	}
	blob := samples{float64(layer.Size)}
	b.rep.add(Row{ID: "6", Name: fmt.Sprintf("%d cold readers, bytes pulled", readers), Unit: unitBytes, Value: stat(pulled),
		AnchorName: "blob size", Anchor: stat(blob), Target: atMost(sharedBytesTarget, ofRatio)})
	b.rep.add(Row{ID: "6", Name: fmt.Sprintf("%d cold readers, wall", readers), Unit: unitSeconds, Value: stat(wall),
		AnchorName: "1 reader through the proxy, scenario 3", Anchor: stat(b.coldCatProxied), Target: atMost(sharedWallTarget, ofRatio),
		Notes: []string{fmt.Sprintf("peak RSS of the server with %d readers: %s (median)", readers, format(unitBytes, rss.median()))}})
	return nil
}

// concurrentOnce runs the readers of scenario 6 once.
func (b *bench) concurrentOnce() (r coldRead, err error) {
	layer := b.img.bigLayer()
	cache, err := b.dir("cache")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(cache)
	m, err := b.mount(b.ref(repoBig+":"+tag, true), cache)
	if err != nil {
		return r, err
	}
	defer m.close()
	b.proxy.ResetCounters()
	cmds := make([]*exec.Cmd, readers)
	for i := range cmds {
		var cancel func()
		cmds[i], cancel = catCmd(b.ctx, m.blob(layer.Digest))
		defer cancel()
	}
	r.wall, err = runAll(cmds)
	if err != nil {
		return r, m.fail(err)
	}
	if err := b.waitCommitted(cache, layer.Digest); err != nil {
		return r, err
	}
	r.pulled, r.settled = quietBytes(b.ctx, b.proxy, 300*time.Millisecond, 10*time.Second)
	if r.rss, err = m.peakRSS(); err != nil {
		return r, err
	}
	return r, m.close()
}

// manyReadyScenario is scenario 8: readiness of a 20-platform index mounted
// with --all-platforms and of a 100-layer image, each against readiness of
// a 1-layer image, measured in turns.
func (b *bench) manyReadyScenario() error {
	kinds := []struct {
		ref   string
		extra []string
		s     samples
	}{
		{ref: b.ref(repoSmall+":"+tag, false)},
		{ref: b.ref(repoMulti+":"+tag, false), extra: []string{"--all-platforms"}},
		{ref: b.ref(repoLayers100+":"+tag, false)},
	}
	for range b.cfg.runs {
		for i := range kinds {
			d, err := b.readiness(kinds[i].ref, kinds[i].extra...)
			if err != nil {
				return err
			}
			kinds[i].s = append(kinds[i].s, d.Seconds())
		}
	}
	one := stat(kinds[0].s)
	b.rep.add(Row{ID: "8", Name: fmt.Sprintf("mount ready, %d-platform index, --all-platforms", len(platforms20)), Unit: unitSeconds,
		Value: stat(kinds[1].s), AnchorName: "1-layer image", Anchor: one, Target: atMost(manyReadyTarget, ofRatio)})
	b.rep.add(Row{ID: "8", Name: "mount ready, 100-layer image", Unit: unitSeconds,
		Value: stat(kinds[2].s), AnchorName: "1-layer image", Anchor: one, Target: atMost(manyReadyTarget, ofRatio)})
	return nil
}
