package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/testfuse"
	"github.com/imgfs/imgfs/internal/testregistry"
)

// The trust tests put a registry that flips bytes under imgfs and check
// the promise of the trust model: a reader that reads to the end never
// ends cleanly on corrupt data, strict mode serves no unverified byte, and
// blobs/ never holds a blob that does not hash to its name, whatever
// processes share the cache and however they die.

// trustReadTimeout bounds one read of a whole layer through a mount. It is
// a hang guard only.
const trustReadTimeout = 60 * time.Second

// mismatchBackoff outlasts how long the cache fails reads of a blob at once
// after its first digest mismatch (1 s, as the README's failure table
// says), so a re-read after it fetches afresh.
const mismatchBackoff = 1500 * time.Millisecond

// trustMount mounts in the foreground and fails the test unless it is
// mounted; the mount is unmounted (MNT_DETACH) and its process waited for
// when the test ends.
func trustMount(t *testing.T, args ...string) (mnt string, m *foregroundMount) {
	t.Helper()
	testfuse.Require(t)
	mnt = t.TempDir()
	m = startForegroundMount(t, mnt, trustReadTimeout, args...)
	if !m.mounted {
		t.Fatalf("imgfs mount %v did not mount: %s", args, describe(m.res.result))
	}
	t.Cleanup(func() {
		if t.Failed() {
			// Read once the process is gone, so the buffer is no
			// longer written.
			killGroup(m.cmd)
			select {
			case <-m.exited:
			case <-time.After(10 * time.Second):
				return
			}
			t.Logf("log of imgfs mount %v:\n%s", args, tailLines(m.stderr.String(), 15))
		}
	})
	return mnt, m
}

// catResult is how one `cat` of a file through a mount ended.
type catResult struct {
	err    error // nil: cat exited 0
	digest digest.Digest
	n      int64
	stderr string
}

func (c catResult) String() string {
	status := "exit 0"
	if c.err != nil {
		status = c.err.Error()
	}
	return fmt.Sprintf("%s, %d bytes hashing to %s, stderr %q", status, c.n, c.digest, strings.TrimSpace(c.stderr))
}

// catFile runs cat on path and hashes what it prints, as any reader to
// EOF would.
func catFile(t *testing.T, path string) catResult {
	t.Helper()
	c := startCat(path)
	return c.wait(t)
}

type runningCat struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	ctx    context.Context
	hash   *countingHash
	stderr *bytes.Buffer
}

func startCat(path string) *runningCat {
	ctx, cancel := context.WithTimeout(context.Background(), trustReadTimeout)
	c := &runningCat{cmd: exec.CommandContext(ctx, "cat", path), cancel: cancel, ctx: ctx,
		hash: &countingHash{h: sha256.New()}, stderr: &bytes.Buffer{}}
	c.cmd.Stdout, c.cmd.Stderr = c.hash, c.stderr
	if err := c.cmd.Start(); err != nil {
		cancel()
		c.cmd = nil
	}
	return c
}

func (c *runningCat) wait(t *testing.T) catResult {
	t.Helper()
	defer c.cancel()
	if c.cmd == nil {
		t.Fatal("cannot start cat")
	}
	err := c.cmd.Wait()
	if c.ctx.Err() != nil {
		t.Fatalf("cat %s hung: killed after %v", c.cmd.Args[1], trustReadTimeout)
	}
	return catResult{err: err, digest: digest.NewDigest(digest.SHA256, c.hash.h), n: c.hash.n, stderr: c.stderr.String()}
}

type countingHash struct {
	h hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

// blobPathIn returns where a mount or cache holds desc.
func blobPathIn(dir string, desc ocispec.Descriptor) string {
	return filepath.Join(dir, "blobs", desc.Digest.Algorithm().String(), desc.Digest.Encoded())
}

// waitCommitted waits (bounded) for desc to be committed in the cache.
func waitCommitted(t *testing.T, cacheDir string, desc ocispec.Descriptor) {
	t.Helper()
	waitFor(t, "the layer to be committed in the cache", func() bool {
		_, err := os.Stat(blobPathIn(cacheDir, desc))
		return err == nil
	})
}

// registryRange reads bytes [off, off+n) of a blob straight from the
// registry, the reference a read through a mount is compared with.
func registryRange(t *testing.T, host, repo string, d digest.Digest, off, n int64) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+host+"/v2/"+repo+"/blobs/"+d.String(), nil)
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusPartialContent || int64(len(data)) != n {
		t.Fatalf("range of %s from the registry: %s, %d bytes, %v", d, resp.Status, len(data), err)
	}
	return data
}

func TestCorruptLayerThroughMountFailsCat(t *testing.T) {
	fx := registryFixtures(t)
	large := fx.three[false].Layers[2]
	proxy := testregistry.StartProxy(t, fx.reg.Host())
	proxy.SetFault(testregistry.Corrupt.On(large.Digest.String()))
	cacheDir := t.TempDir()
	mnt, m := trustMount(t, "--cache-dir", cacheDir, "--fetch-timeout", "10s", proxy.Host()+"/three/oci:v1")
	layer := blobPathIn(mnt, large)

	c := catFile(t, layer)
	if c.err == nil {
		t.Errorf("cat of a layer whose bytes the registry corrupts exited 0 (%s); want EIO", c)
	} else if !strings.Contains(c.stderr, "Input/output error") {
		t.Errorf("cat of a corrupted layer failed, but not with EIO: %s", c)
	}
	if proxy.BlobBytes() == 0 {
		t.Fatal("the read fetched no bytes through the corrupting proxy: the test proves nothing")
	}
	pulled := bytesOf(proxy, large.Digest)
	t.Logf("the failing cat pulled %d bytes of the layer, %.2f times its size, in %d blob requests", pulled, float64(pulled)/float64(large.Size), proxy.BlobRequests())
	if pulled > large.Size {
		t.Errorf("one failing cat pulled %d bytes of the layer, more than its %d: the reads queued behind it fetched it again", pulled, large.Size)
	}
	checkCacheBlobs(t, cacheDir)
	if _, err := os.Stat(blobPathIn(cacheDir, large)); err == nil {
		t.Error("the layer was committed from corrupted bytes")
	}

	proxy.SetFault(testregistry.None)
	time.Sleep(mismatchBackoff) // reads fail fast this long after a mismatch
	c = catFile(t, layer)
	if c.err != nil || c.digest != large.Digest || c.n != large.Size {
		t.Errorf("re-read after the fault cleared: %s; want exit 0 and %d bytes hashing to %s", c, large.Size, large.Digest)
	} else {
		waitCommitted(t, cacheDir, large)
	}
	checkCacheBlobs(t, cacheDir)
	m.stop(t)
	checkNoPanic(t, "imgfs mount", m.res.result)
}

func TestStrictModeServesNoUnverifiedByte(t *testing.T) {
	fx := registryFixtures(t)
	large := fx.three[false].Layers[2]
	proxy := testregistry.StartProxy(t, fx.reg.Host())
	proxy.SetFault(testregistry.Corrupt.On(large.Digest.String()))
	cacheDir := t.TempDir()
	mnt, m := trustMount(t, "--verify", "strict", "--cache-dir", cacheDir, "--fetch-timeout", "10s", proxy.Host()+"/three/oci:v1")
	layer := blobPathIn(mnt, large)

	// The first 4 KiB are far from the byte the proxy flips in each
	// response; only a check of the whole blob can refuse them.
	f, err := os.Open(layer)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	n, err := f.ReadAt(buf, 0)
	if err == nil {
		t.Errorf("--verify strict served the first %d bytes of a blob that fails verification; want EIO", n)
	} else if !errors.Is(err, syscall.EIO) {
		t.Errorf("--verify strict: read of the first 4 KiB failed with %v, want EIO", err)
	}
	if c := catFile(t, layer); c.err == nil {
		t.Errorf("--verify strict: cat of a corrupted layer exited 0 (%s)", c)
	}
	checkCacheBlobs(t, cacheDir)

	// Strict mode still serves a blob once it verifies.
	proxy.SetFault(testregistry.None)
	time.Sleep(mismatchBackoff)
	want := registryRange(t, fx.reg.Host(), "three/oci", large.Digest, 0, 4096)
	g, err := os.Open(layer) // a fresh handle, as a new reader would
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if n, err := g.ReadAt(buf, 0); err != nil || !bytes.Equal(buf[:n], want) {
		t.Errorf("--verify strict after the fault cleared: read of the first 4 KiB: %d bytes, %v; want the layer's bytes", n, err)
	}
	checkCacheBlobs(t, cacheDir)
	// Open files keep a mount busy; close them before unmounting.
	f.Close()
	g.Close()
	m.stop(t)
	checkNoPanic(t, "imgfs mount --verify strict", m.res.result)
}

func TestTwoProcessesOneCorruptingProxy(t *testing.T) {
	fx := registryFixtures(t)
	large := fx.three[false].Layers[2]
	bad := testregistry.StartProxy(t, fx.reg.Host())
	bad.SetFault(testregistry.Corrupt.On(large.Digest.String()))
	good := testregistry.StartProxy(t, fx.reg.Host())
	cacheDir := t.TempDir()
	badMnt, badMount := trustMount(t, "--cache-dir", cacheDir, "--fetch-timeout", "10s", bad.Host()+"/three/oci:v1")
	goodMnt, goodMount := trustMount(t, "--cache-dir", cacheDir, "--fetch-timeout", "10s", good.Host()+"/three/oci:v1")

	// Watch blobs/ while both read: a wrong blob must never appear, not
	// even for a moment.
	stop := make(chan struct{})
	var watcher sync.WaitGroup
	watcher.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if wrong := wrongBlobs(cacheDir); len(wrong) > 0 {
				t.Errorf("blobs/ held a wrong blob while two processes read: %v", wrong)
				return
			}
		}
	})
	badCat, goodCat := startCat(blobPathIn(badMnt, large)), startCat(blobPathIn(goodMnt, large))
	badRes, goodRes := badCat.wait(t), goodCat.wait(t)
	close(stop)
	watcher.Wait()

	if goodRes.err != nil || goodRes.digest != large.Digest {
		t.Errorf("cat through the clean registry: %s; want exit 0 and %s", goodRes, large.Digest)
	}
	// The process behind the corrupting proxy must not end cleanly on
	// its own corrupt bytes. It may end cleanly on the right bytes, when
	// it waited for or read what the other process committed.
	switch {
	case badRes.err == nil && badRes.digest != large.Digest:
		t.Errorf("cat through the corrupting registry exited 0 with corrupt data: %s", badRes)
	case badRes.err == nil:
		t.Logf("cat through the corrupting registry got the right bytes (from the other process's commit): %s", badRes)
	default:
		t.Logf("cat through the corrupting registry failed, as it should: %s", badRes)
	}
	if bad.BlobBytes() == 0 {
		t.Log("the corrupting proxy served no layer bytes: the clean process committed first")
	}
	waitCommitted(t, cacheDir, large)
	checkCacheBlobs(t, cacheDir)
	badMount.stop(t)
	goodMount.stop(t)
	checkNoPanic(t, "imgfs mount (corrupting registry)", badMount.res.result)
	checkNoPanic(t, "imgfs mount (clean registry)", goodMount.res.result)
}

// wrongBlobs returns the files under cacheDir/blobs/sha256 that do not hash
// to their names, skipping files that vanish while it looks.
func wrongBlobs(cacheDir string) []string {
	dir := filepath.Join(cacheDir, "blobs", "sha256")
	entries, _ := os.ReadDir(dir)
	var wrong []string
	for _, e := range entries {
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err == nil && fmt.Sprintf("%x", h.Sum(nil)) != e.Name() {
			wrong = append(wrong, e.Name())
		}
	}
	return wrong
}

// strayFiles returns files outside ingest/ and blobs/ whose names mark them
// as temporary: what a crash may leave behind and must not.
func strayFiles(t *testing.T, cacheDir string) []string {
	t.Helper()
	var stray []string
	filepath.WalkDir(cacheDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(cacheDir, path)
		if d.IsDir() && (rel == "ingest" || rel == "blobs") {
			return fs.SkipDir // blobs/ is checked by hashing
		}
		if !d.IsDir() && (strings.HasPrefix(d.Name(), ".") || strings.HasSuffix(d.Name(), ".tmp")) {
			stray = append(stray, rel)
		}
		return nil
	})
	return stray
}

// killNineRate makes a fetch of the three-layer image (33 MiB) take about
// four seconds, so that a kill at a random point up to 1.5 s in lands in
// the middle of the transfer.
const killNineRate = 8 << 20

func TestKillNineNeverLeavesWrongBlob(t *testing.T) {
	fx := registryFixtures(t)
	pushed := fx.three[false]
	large := pushed.Layers[2]
	proxy := testregistry.StartProxy(t, fx.reg.Host())
	proxy.SetBandwidth(killNineRate)
	ref := proxy.Host() + "/three/oci:v1"
	cacheDir := t.TempDir()
	rng := rand.New(rand.NewPCG(20, 9)) // fixed: the same kill points every run

	killed := 0
	for i := range 20 {
		delay := 200*time.Millisecond + time.Duration(rng.Int64N(int64(1300*time.Millisecond)))
		cmd := imgfsCommand("fetch", "--quiet", "--cache-dir", cacheDir, ref)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("run %d ended by itself with %v before its kill at %v: %s", i, err, delay, stderr.String())
			}
		case <-time.After(delay):
			cmd.Process.Kill() // SIGKILL: no cleanup runs
			<-exited
			killed++
		}
		if wrong := wrongBlobs(cacheDir); len(wrong) > 0 {
			t.Fatalf("after kill %d at %v: blobs/ holds blobs that do not hash to their names: %v", i, delay, wrong)
		}
		checkCacheBlobs(t, cacheDir)
		if stray := strayFiles(t, cacheDir); len(stray) > 0 {
			t.Errorf("after kill %d at %v: stray files outside ingest/: %v", i, delay, stray)
		}
	}
	t.Logf("%d of 20 runs were killed mid-fetch; %d blob bytes crossed the proxy", killed, proxy.BlobBytes())
	if killed == 0 {
		t.Fatal("no run was killed mid-fetch: the test proves nothing")
	}

	ingestBefore := ingestListing(cacheDir)
	proxy.ResetCounters()
	r := runGuarded(t, commandTimeout, "fetch", "--quiet", "--cache-dir", cacheDir, ref)
	if r.code != 0 || r.hung {
		t.Fatalf("the fetch after 20 kills: %s", describe(r.result))
	}
	if got := proxy.BlobBytes(); got >= large.Size {
		t.Errorf("the fetch after the kills pulled %d blob bytes, not less than the %d-byte layer: it did not resume (ingest/ before it: %v)", got, large.Size, ingestBefore)
	}
	blobs := checkCacheBlobs(t, cacheDir)
	for _, d := range append([]ocispec.Descriptor{pushed.Config}, pushed.Layers...) {
		if !blobs[d.Digest.String()] {
			t.Errorf("blob %s missing after the final fetch", d.Digest)
		}
	}
	if stray := strayFiles(t, cacheDir); len(stray) > 0 {
		t.Errorf("stray files outside ingest/ after the final fetch: %v", stray)
	}
	if names := ingestListing(cacheDir); len(names) != 0 {
		t.Errorf("ingest/ still holds %v after a complete fetch: orphaned partials were not swept", names)
	}
}

// ingestListing names the files in ingest/ with their sizes.
func ingestListing(cacheDir string) []string {
	entries, _ := os.ReadDir(filepath.Join(cacheDir, "ingest"))
	var names []string
	for _, e := range entries {
		if info, err := e.Info(); err == nil {
			names = append(names, fmt.Sprintf("%s (%d bytes)", e.Name(), info.Size()))
		}
	}
	return names
}

// bytesOf sums the body bytes the proxy passed for blob d.
func bytesOf(proxy *testregistry.Proxy, d digest.Digest) int64 {
	var n int64
	for _, req := range proxy.Requests() {
		if strings.HasSuffix(req.Path, "/blobs/"+d.String()) {
			n += req.Bytes
		}
	}
	return n
}
