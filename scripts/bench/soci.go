package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/layer"
	"github.com/imgfs/imgfs/internal/layer/ztoc"
	"github.com/imgfs/imgfs/internal/soci"
	"github.com/imgfs/imgfs/internal/testregistry"
)

// Scenario 11 reads one small file of a plain gzip image through the SOCI
// v1 index `imgfs index push` published for it, as a referrer of the image
// manifest (through the tag fallback: distribution 2.8 has no referrers
// API). The image is scenario 9's gzip view image (viewTar), pushed to a
// repository of its own, so that scenario 9's mounts find no index and
// the two scenarios share nothing.
const (
	repoSOCI = "soci-gzip"
	sociFile = "etc/os-release" // the small file read, the tar's first entry
	// sociLinkTarget bounds the cold read through the SOCI index ÷ curl -o
	// of the layer, both at viewLinkRate: it should fetch a small part of
	// the layer (the zTOC and one span), not the layer.
	sociLinkTarget = 0.25
	// sociPushTarget bounds imgfs index push ÷ curl | gunzip | tar -t:
	// building the zTOC is one pass over the layer, like scenario 9's
	// index pass (viewIndexTarget), plus the upload of a zTOC of a few
	// percent of the layer.
	sociPushTarget = viewIndexTarget
	// sociMinLayerSize is index push's --min-layer-size: 0, so that the
	// layer gets a zTOC whatever its size.
	sociMinLayerSize = "0"
)

// sociScenario is scenario 11. It publishes the index with imgfs index
// push (timed, on a fresh cache each run, against the pass anchor of
// scenario 9), then times a cold mount + read of sociFile through the
// index, the same read with --index=none (a pass over the layer) and
// curl -o of the layer, on loopback and through the bench's proxy limited
// to viewLinkRate; and counts, in a run of its own through the proxy, the
// blob bytes the read through the index pulls.
func (b *bench) sociScenario() error {
	raw, err := viewTar()
	if err != nil {
		return err
	}
	want, err := tarFile(raw, sociFile)
	if err != nil {
		return err
	}
	prepared, err := testregistry.LayerBlob(raw, testregistry.BlobGzip)
	if err != nil {
		return err
	}
	img, err := b.reg.PushPrepared(repoSOCI, tag, []testregistry.PreparedLayer{prepared})
	if err != nil {
		return fmt.Errorf("push the gzip image to %s: %w", repoSOCI, err)
	}
	layer := img.Layers[0]
	if err := b.sociPushAvailable(); err != nil {
		return err
	}

	// Publish, timed: the first push publishes the index, the others push
	// it again from a cache of their own.
	blobURL := fmt.Sprintf("http://%s/v2/%s/blobs/%s", b.reg.Host(), repoSOCI, layer.Digest)
	var indexes []digest.Digest
	push := &contender{name: "imgfs index push", runs: b.cfg.runs, run: func() (time.Duration, error) {
		d, index, err := b.sociPush(b.ref(repoSOCI+":"+tag, false))
		if err == nil {
			indexes = append(indexes, index)
		}
		return d, err
	}}
	gunzip := &contender{name: "curl | gunzip | tar -t", runs: b.cfg.runs, run: func() (time.Duration, error) {
		return runCmd(b.ctx, transferTimeout, nil, "sh", "-c", "curl -sSf '"+blobURL+"' | gunzip | tar -t > /dev/null")
	}}
	inTurns(push, gunzip)
	if push.err != nil {
		return oneLine(push.err)
	}
	published, err := b.sociPublished(indexes, img, layer)
	if err != nil {
		return fmt.Errorf("read back the published SOCI index: %w", err)
	}
	pushNotes := []string{fmt.Sprintf("imgfs index push --plain-http --min-layer-size %s on a fresh cache each run: fetch the layer, build its zTOC (span size %s), push the zTOC and a v1 index as a referrer (tag fallback on distribution 2.8)",
		sociMinLayerSize, format(unitBytes, float64(published.toc.SpanSize)))}
	if n := distinct(indexes); n > 1 {
		pushNotes = append(pushNotes, fmt.Sprintf("the %d pushes published %d different index digests; the reads use the last, %s", len(indexes), n, published.index))
	}
	b.rep.add(Row{ID: "11", Name: fmt.Sprintf("imgfs index push of the %s gzip image", format(unitBytes, float64(layer.Size))), Unit: unitSeconds,
		Value: stat(push.s), AnchorName: gunzip.name, Anchor: stat(gunzip.s), Target: atMost(sociPushTarget, ofRatio), Notes: pushNotes})

	// The cold reads, on loopback and then at viewLinkRate.
	errs := []error{oneLine(gunzip.err)}
	for _, link := range []bool{false, true} {
		if link {
			b.proxy.SetBandwidth(viewLinkRate)
		}
		t := b.sociTimed(link, want, layer)
		b.proxy.SetBandwidth(0)
		for _, row := range t.rows(link) {
			b.rep.add(row)
		}
		errs = append(errs, t.err())
	}
	count, err := b.sociCount(want, img, published)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	b.rep.add(count.row(layer, published))
	return errors.Join(errs...)
}

// sociPushAvailable fails, in one line, when the imgfs under test has no
// index push command.
func (b *bench) sociPushAvailable() error {
	if _, err := runCmd(b.ctx, time.Minute, nil, b.cfg.imgfs, "index", "push", "--help"); err != nil {
		return fmt.Errorf("%s has no `imgfs index push`, which publishes the index this scenario reads", b.cfg.imgfs)
	}
	return nil
}

// sociPush runs imgfs index push of ref on a fresh cache and returns its
// wall time and the index digest it printed on its last line.
func (b *bench) sociPush(ref string) (time.Duration, digest.Digest, error) {
	dir, err := b.dir("soci-push-cache")
	if err != nil {
		return 0, "", err
	}
	defer os.RemoveAll(dir)
	var out bytes.Buffer
	d, err := runCmd(b.ctx, transferTimeout, &out, b.cfg.imgfs, "index", "push", "--cache-dir", dir,
		"--plain-http", "--min-layer-size", sociMinLayerSize, ref)
	if err != nil {
		return 0, "", err
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	index, err := digest.Parse(last)
	if err != nil {
		return 0, "", fmt.Errorf("imgfs index push printed %q on its last line, not the index digest", last)
	}
	return d, index, nil
}

// sociIndex is what the published index holds for the layer: the index
// manifest's digest, the zTOC's descriptor and the parsed zTOC.
type sociIndex struct {
	index digest.Digest
	ztoc  ocispec.Descriptor
	toc   *ztoc.TOC
}

// sociPublished reads the last published index back from the registry,
// checks that it is a v1 index of img's manifest listing a zTOC for layer,
// and parses that zTOC.
func (b *bench) sociPublished(indexes []digest.Digest, img testregistry.Pushed, layer ocispec.Descriptor) (sociIndex, error) {
	p := sociIndex{index: indexes[len(indexes)-1]}
	desc, data, err := b.reg.GetManifest(repoSOCI, p.index.String())
	if err != nil {
		return p, err
	}
	if desc.Digest != p.index {
		return p, fmt.Errorf("manifest %s has digest %s", p.index, desc.Digest)
	}
	x, err := soci.Parse(data)
	if err != nil {
		return p, err
	}
	if x.Version != soci.V1 || x.Subject == nil || x.Subject.Digest != img.Manifest.Digest {
		return p, fmt.Errorf("index %s is not a v1 index whose subject is the image manifest %s", p.index, img.Manifest.Digest)
	}
	z, ok := x.For(layer.Digest)
	if !ok {
		return p, fmt.Errorf("index %s lists no zTOC for the layer %s", p.index, layer.Digest)
	}
	p.ztoc = z.Desc
	blob, err := getBlob(b.reg.Host(), repoSOCI, z.Desc)
	if err != nil {
		return p, err
	}
	if p.toc, err = ztoc.Parse(blob, ztoc.Limits{}); err != nil {
		return p, fmt.Errorf("zTOC %s: %w", z.Desc.Digest, err)
	}
	return p, nil
}

// spansOf returns the compressed bytes of the spans that hold name's
// content, and how many spans that is: what the cache fetches for it, each
// span by its own range (an exact range reader, see cache/internal/blobfsm).
func (p sociIndex) spansOf(name string) (n int64, spans int, err error) {
	i := slices.IndexFunc(p.toc.Entries, func(e layer.Entry) bool { return e.Name == name })
	if i < 0 {
		return 0, 0, fmt.Errorf("zTOC %s has no entry %s", p.ztoc.Digest, name)
	}
	from, to := p.toc.Entries[i].DataOffset, p.toc.Entries[i].DataOffset+max(p.toc.Entries[i].Size, 1)
	cps := p.toc.Checkpoints
	for i := range cps {
		end := p.toc.UncompressedSize
		if i+1 < len(cps) {
			end = cps[i+1].Out
		}
		if cps[i].Out < to && end > from {
			s, e := p.toc.SpanRange(i)
			n += e - s
			spans++
		}
	}
	return n, spans, nil
}

// sociTimes are the cold reads of one link: through the index, after a
// pass (--index=none), and curl -o of the layer.
type sociTimes struct {
	index, pass, curl *contender
	ready, afterReady samples // the index runs' mount readiness, and the read after it
}

// sociTimed times the cold reads in turns, on loopback or, with link,
// through the proxy (whose bandwidth the caller has set).
func (b *bench) sociTimed(link bool, want []byte, layer ocispec.Descriptor) *sociTimes {
	ref := b.ref(repoSOCI+":"+tag, link)
	host := b.reg.Host()
	at := ""
	if link {
		host, at = b.proxy.Host(), " at 100 MB/s"
	}
	t := &sociTimes{}
	t.index = &contender{name: "imgfs mount + cat rootfs/" + sociFile + " (SOCI v1)" + at, runs: b.cfg.runs, run: func() (time.Duration, error) {
		d, ready, err := b.sociColdRead(ref, want, layer, "soci-v1")
		if err == nil {
			t.ready = append(t.ready, ready.Seconds())
			t.afterReady = append(t.afterReady, (d - ready).Seconds())
		}
		return d, err
	}}
	t.pass = &contender{name: "imgfs mount --index=none + cat rootfs/" + sociFile + at, runs: b.cfg.runs, run: func() (time.Duration, error) {
		d, _, err := b.sociColdRead(ref, want, layer, "pass", "--index=none")
		return d, err
	}}
	t.curl = &contender{name: "curl -o" + at, runs: b.cfg.runs, run: func() (time.Duration, error) {
		return b.curl(host, repoSOCI, false, layer)
	}}
	inTurns(t.index, t.pass, t.curl)
	return t
}

// err is the first failure of each of the link's contenders, in one line.
func (t *sociTimes) err() error {
	return oneLine(errors.Join(t.index.err, t.pass.err, t.curl.err))
}

// rows are the timed rows of one link.
func (t *sociTimes) rows(link bool) []Row {
	name, same := "cold cat of a small file through a SOCI v1 index", ""
	passNote := "with --index=none the file appears once a pass has read and inflated the whole layer"
	curlNote := "on loopback the index's read is bounded by round trips and the mount's start, not by bytes; no target: the aim is judged at 100 MB/s"
	var target *Target
	if link {
		name, same = name+", 100 MB/s link", ", same link"
		curlNote = "imgfs and curl -o both through the bench's proxy limited to 100 MB/s"
		target = atMost(sociLinkTarget, ofRatio)
	}
	ready := fmt.Sprintf("from running imgfs mount --background on a fresh cache until the file's bytes were read; in the SOCI runs the mount was ready (index.json read) after %s and the read took %s more (medians)",
		format(unitSeconds, t.ready.median()), format(unitSeconds, t.afterReady.median()))
	return []Row{
		{ID: "11", Name: name, Unit: unitSeconds, Value: stat(t.index.s),
			AnchorName: "the same with --index=none" + same, Anchor: stat(t.pass.s), Notes: []string{ready, passNote}},
		{ID: "11", Name: name, Unit: unitSeconds, Value: stat(t.index.s),
			AnchorName: "curl -o of its layer" + same, Anchor: stat(t.curl.s), Target: target, Notes: []string{curlNote}},
	}
}

// sociColdRead mounts ref on a fresh cache with extra flags, reads
// sociFile through rootfs/ and returns the time from running imgfs mount
// until the bytes were read, and the mount's readiness. It fails unless
// the bytes are the layer's and the layer's index came from wantSource
// (stats.json).
func (b *bench) sociColdRead(ref string, want []byte, layer ocispec.Descriptor, wantSource string, extra ...string) (d, ready time.Duration, err error) {
	dir, err := b.dir("soci-cache")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	start := time.Now()
	m, err := b.mount(ref, dir, extra...)
	if err != nil {
		return 0, 0, err
	}
	defer m.close()
	got, err := os.ReadFile(filepath.Join(m.dir, "rootfs", sociFile))
	d = time.Since(start)
	if err != nil {
		return 0, 0, fmt.Errorf("read rootfs/%s: %w%s", sociFile, err, lastLogLine(m))
	}
	if err := checkSOCIRead(m, got, want, layer, wantSource); err != nil {
		return 0, 0, err
	}
	return d, m.ready, m.close()
}

// checkSOCIRead checks that got is the file's content and that the mount
// indexed the layer from wantSource.
func checkSOCIRead(m *mount, got, want []byte, layer ocispec.Descriptor, wantSource string) error {
	if !bytes.Equal(got, want) {
		return fmt.Errorf("rootfs/%s: read %d bytes that are not the layer's %d", sociFile, len(got), len(want))
	}
	source, err := layerSource(m.dir, layer.Digest)
	if err != nil {
		return err
	}
	if source != wantSource {
		return fmt.Errorf("the layer's files came from index source %q, not %q (stats.json)%s", source, wantSource, lastLogLine(m))
	}
	return nil
}

// sociCount is what one cold read through the index pulled, counted at
// the proxy from before the mount started: all blob bytes, and those of
// the layer, the zTOC and the config.
type sociCount struct {
	pulled                    int64
	settled                   bool
	layer, ztoc, config, rest int64
	layerRanges               int
}

// sociCount mounts through the unlimited proxy on a fresh cache, reads
// sociFile and counts the blob bytes pulled until the proxy is quiet.
func (b *bench) sociCount(want []byte, img testregistry.Pushed, p sociIndex) (c sociCount, err error) {
	dir, err := b.dir("soci-count")
	if err != nil {
		return c, err
	}
	defer os.RemoveAll(dir)
	b.proxy.ResetCounters()
	m, err := b.mount(b.ref(repoSOCI+":"+tag, true), dir)
	if err != nil {
		return c, oneLine(err)
	}
	defer m.close()
	got, err := os.ReadFile(filepath.Join(m.dir, "rootfs", sociFile))
	if err != nil {
		return c, fmt.Errorf("counting run: read rootfs/%s: %w%s", sociFile, err, lastLogLine(m))
	}
	if err := checkSOCIRead(m, got, want, img.Layers[0], "soci-v1"); err != nil {
		return c, fmt.Errorf("counting run: %w", err)
	}
	c.pulled, c.settled = quietBytes(b.ctx, b.proxy, coldCountQuiet, 10*time.Second)
	for _, r := range b.proxy.Requests() {
		if r.Method != http.MethodGet || !strings.Contains(r.Path, "/blobs/") || (r.Status != http.StatusOK && r.Status != http.StatusPartialContent) {
			continue
		}
		switch {
		case strings.HasSuffix(r.Path, "/"+img.Layers[0].Digest.String()):
			c.layer += r.Bytes
			c.layerRanges++
		case strings.HasSuffix(r.Path, "/"+p.ztoc.Digest.String()):
			c.ztoc += r.Bytes
		case strings.HasSuffix(r.Path, "/"+img.Config.Digest.String()):
			c.config += r.Bytes
		default:
			c.rest += r.Bytes
		}
	}
	return c, m.close()
}

// row is the bytes row: what the read pulled, against the layer's size,
// with the zTOC, the span holding the file and the config as the target.
func (c sociCount) row(layer ocispec.Descriptor, p sociIndex) Row {
	row := Row{ID: "11", Name: "cold cat of a small file through a SOCI v1 index, bytes pulled", Unit: unitBytes,
		Value: stat(samples{float64(c.pulled)}), AnchorName: "layer size", Anchor: stat(samples{float64(layer.Size)})}
	spanBytes, spans, err := p.spansOf(sociFile)
	if err != nil {
		row.Notes = append(row.Notes, "no expectation: "+err.Error())
	} else {
		row.Notes = append(row.Notes,
			fmt.Sprintf("target: the zTOC (%s) + the %d span(s) holding the file, by their own ranges (%s compressed) + the image config every mount reads (%d B) = %s",
				format(unitBytes, float64(p.ztoc.Size)), spans, format(unitBytes, float64(spanBytes)), c.config, format(unitBytes, float64(p.ztoc.Size+spanBytes+c.config))))
		row.Target = atMost(float64(p.ztoc.Size+spanBytes+c.config), ofValue)
	}
	row.Notes = append(row.Notes,
		fmt.Sprintf("pulled: zTOC %d B, layer %d B in %d range requests, config %d B, other blobs %d B; the layer has %d spans",
			c.ztoc, c.layer, c.layerRanges, c.config, c.rest, len(p.toc.Checkpoints)),
		"one cold mount + cat of its own through the counting proxy (no bandwidth limit), counted from before the mount until the proxy was quiet for "+
			format(unitSeconds, coldCountQuiet.Seconds()))
	if !c.settled {
		row.Notes = append(row.Notes, "the server was still fetching 10 s after the read")
	}
	return row
}

// tarFile returns the content of the regular file name in the tar raw.
func tarFile(raw []byte, name string) ([]byte, error) {
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := tr.Next()
		if err != nil {
			return nil, fmt.Errorf("%s in the view image's tar: %w", name, err)
		}
		if h.Name == name {
			return io.ReadAll(tr)
		}
	}
}

// getBlob fetches a blob of repo straight from the registry at host and
// checks its digest.
func getBlob(host, repo string, d ocispec.Descriptor) ([]byte, error) {
	resp, err := http.Get(fmt.Sprintf("http://%s/v2/%s/blobs/%s", host, repo, d.Digest))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET blob %s: %s", d.Digest, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, d.Size+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != d.Size || digest.FromBytes(data) != d.Digest {
		return nil, fmt.Errorf("blob %s: %d bytes that do not match its descriptor", d.Digest, len(data))
	}
	return data, nil
}

// layerSource returns where the mount's only layer view got its index
// (stats.json's views[].source).
func layerSource(mnt string, layer digest.Digest) (string, error) {
	var doc struct {
		Cache struct {
			Views []struct {
				Layer  digest.Digest `json:"layer"`
				Source string        `json:"source"`
			} `json:"views"`
		} `json:"cache"`
	}
	data, err := os.ReadFile(filepath.Join(mnt, ".imgfs", "stats.json"))
	if err != nil {
		return "", err
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return "", fmt.Errorf("stats.json: %w", err)
	}
	for _, v := range doc.Cache.Views {
		if v.Layer == layer {
			return v.Source, nil
		}
	}
	return "", fmt.Errorf("stats.json lists no view of the layer %s", layer)
}

// lastLogLine returns the server log's last line, as a suffix for a
// one-line error; the log lives in the cache, which the bench removes.
func lastLogLine(m *mount) string {
	data, err := os.ReadFile(m.log)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return " (server log: " + strings.TrimSpace(lines[len(lines)-1]) + ")"
}

// oneLine folds a multi-line error (a command's stderr tail, a server
// log's) into one line.
func oneLine(err error) error {
	if err == nil {
		return nil
	}
	s := err.Error()
	if !strings.Contains(s, "\n") {
		return err
	}
	fields := strings.Split(s, "\n")
	for i := range fields {
		fields[i] = strings.TrimSpace(fields[i])
	}
	return errors.New(strings.Join(fields, " | "))
}

// distinct counts the different digests in ds.
func distinct(ds []digest.Digest) int {
	seen := map[digest.Digest]bool{}
	for _, d := range ds {
		seen[d] = true
	}
	return len(seen)
}
