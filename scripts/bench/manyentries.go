package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/imgfs/imgfs/internal/testregistry"
)

// Scenario 12 measures what a layer of a million tiny entries costs the
// mount: the index pass, and the server's memory once the kernel has
// looked at every entry (issue 20: memory that does not grow with what a
// stranger wrote).
const (
	repoManyEntries = "many-entries"
	manyEntries     = 1_000_000
	manyRSSTarget   = 400 << 20 // 12: peak RSS of the server after find rootfs
	// manyRuns bounds the runs: each walks a million entries through FUSE.
	manyRuns = 3
)

// manyEntriesScenario is scenario 12: a cold mount of a one-layer gzip
// image of a million entries (about 10 MB), timed until ls rootfs/ answers
// (the index pass) against curl | gunzip | tar -t of the layer; then
// find rootfs, whose count of lines must be every entry, with the server's
// peak RSS (VmHWM) after the ls and after the find.
func (b *bench) manyEntriesScenario() error {
	start := time.Now()
	l, info, err := testregistry.ManyEntriesLayer(manyEntries)
	if err != nil {
		return err
	}
	pushed, err := b.reg.PushPrepared(repoManyEntries, tag, []testregistry.PreparedLayer{l})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: pushed %s:%s (%d entries, %d bytes) in %.1f s\n", repoManyEntries, tag, info.Entries, len(l.Data), time.Since(start).Seconds())
	layer := pushed.Layers[0]
	blobURL := fmt.Sprintf("http://%s/v2/%s/blobs/%s", b.reg.Host(), repoManyEntries, layer.Digest)
	runs := min(b.cfg.runs, manyRuns)

	var rssLs, rssFind, rssNow, findTime samples
	pass := &contender{name: "imgfs mount + ls rootfs/", runs: runs, run: func() (time.Duration, error) {
		cache, err := b.dir("many-cache")
		if err != nil {
			return 0, err
		}
		defer os.RemoveAll(cache)
		start := time.Now()
		m, err := b.mount(b.ref(repoManyEntries+":"+tag, false), cache)
		if err != nil {
			return 0, err
		}
		defer m.close()
		if _, err := os.ReadDir(filepath.Join(m.dir, "rootfs")); err != nil {
			return 0, m.fail(err)
		}
		d := time.Since(start)
		ls, err := m.peakRSS()
		if err != nil {
			return 0, err
		}
		var out bytes.Buffer
		fd, err := runCmd(b.ctx, transferTimeout, &out, "sh", "-c", "find '"+filepath.Join(m.dir, "rootfs")+"' | wc -l")
		if err != nil {
			return 0, m.fail(err)
		}
		// find prints rootfs itself, then every entry of the layer.
		if got, want := strings.TrimSpace(out.String()), strconv.Itoa(info.Entries+1); got != want {
			return 0, m.fail(fmt.Errorf("find rootfs | wc -l: %s lines, want %s", got, want))
		}
		find, err := m.peakRSS()
		if err != nil {
			return 0, err
		}
		now, err := m.statusBytes("VmRSS")
		if err != nil {
			return 0, err
		}
		rssLs, rssFind, rssNow, findTime = append(rssLs, float64(ls)), append(rssFind, float64(find)), append(rssNow, float64(now)), append(findTime, fd.Seconds())
		return d, m.close()
	}}
	gunzip := &contender{name: "curl | gunzip | tar -t", runs: runs, run: func() (time.Duration, error) {
		return runCmd(b.ctx, transferTimeout, nil, "sh", "-c", "curl -sSf '"+blobURL+"' | gunzip | tar -t > /dev/null")
	}}
	inTurns(pass, gunzip)

	shape := fmt.Sprintf("one gzip layer of %s: %d entries (%d directories, the rest empty files, depth 2 to 6), %d-byte tar headers",
		format(unitBytes, float64(layer.Size)), info.Entries, info.Dirs, 512)
	b.rep.add(Row{ID: "12", Name: "index pass of a 1M-entry gzip layer", Unit: unitSeconds, Value: stat(pass.s),
		AnchorName: gunzip.name, Anchor: stat(gunzip.s), Target: atMost(viewIndexTarget, ofRatio),
		Notes: []string{shape, "a cold mount until ls rootfs/ answers: one verified pass that also fills the cache and stores the index"}})
	b.rep.add(Row{ID: "12", Name: "peak RSS of the server after ls rootfs/, 1M entries", Unit: unitBytes, Value: stat(rssLs)})
	b.rep.add(Row{ID: "12", Name: "peak RSS of the server after find rootfs, 1M entries", Unit: unitBytes, Value: stat(rssFind),
		Target: atMost(manyRSSTarget, ofValue),
		Notes: []string{fmt.Sprintf("find listed every entry; it took %.1f s (median); RSS right after it, median %s",
			findTime.median(), format(unitBytes, rssNow.median()))}})
	return errors.Join(pass.err, gunzip.err)
}
