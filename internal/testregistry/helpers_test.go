package testregistry

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// get performs a GET with optional extra headers and returns the response
// with its body read.
func get(t *testing.T, ctx context.Context, url string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp, body
}

func blobURL(host, repo string, d digest.Digest) string {
	return "http://" + host + "/v2/" + repo + "/blobs/" + d.String()
}

// fetchBlob GETs a whole blob from host and checks its digest and size.
func fetchBlob(t *testing.T, host, repo string, desc ocispec.Descriptor) []byte {
	t.Helper()
	resp, body := get(t, context.Background(), blobURL(host, repo, desc.Digest), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET blob %s: %s", desc.Digest, resp.Status)
	}
	if int64(len(body)) != desc.Size || digest.FromBytes(body) != desc.Digest {
		t.Fatalf("blob %s: got %d bytes with digest %s, want %d bytes", desc.Digest, len(body), digest.FromBytes(body), desc.Size)
	}
	return body
}

// decompress returns the tar inside a layer blob, using an implementation
// independent of the one that built it where there is one (zstd -d).
func decompress(t *testing.T, mediaType string, blob []byte) []byte {
	t.Helper()
	switch {
	case strings.HasSuffix(mediaType, "gzip"):
		zr, err := gzip.NewReader(bytes.NewReader(blob))
		if err != nil {
			t.Fatal(err)
		}
		out, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		return out
	case strings.HasSuffix(mediaType, "zstd"):
		cmd := exec.Command(ZstdPath, "-d", "-q", "-c")
		cmd.Stdin = bytes.NewReader(blob)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("zstd -d: %v", err)
		}
		return out
	}
	return blob
}

// tarEntry is what the tests compare between a layer's Files and its tar.
type tarEntry struct {
	Name     string
	Type     byte
	Mode     int64
	Linkname string
	Size     int64
	Digest   digest.Digest
}

func expectedEntries(t *testing.T, l Layer) []tarEntry {
	t.Helper()
	files, err := l.TarEntries()
	if err != nil {
		t.Fatal(err)
	}
	var out []tarEntry
	for _, f := range files {
		e := tarEntry{Name: f.Name, Type: f.Type, Mode: f.Mode, Linkname: f.Linkname, Size: f.Size}
		if f.Type == tar.TypeReg {
			h := sha256.New()
			io.Copy(h, f.Content())
			e.Digest = digest.NewDigest(digest.SHA256, h)
		}
		out = append(out, e)
	}
	return out
}

func readTar(t *testing.T, b []byte) []tarEntry {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	var out []tarEntry
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Uid != 0 || hdr.Gid != 0 || !hdr.ModTime.Equal(layerTime) {
			t.Errorf("tar %s: uid %d gid %d mtime %v, want 0 0 %v", hdr.Name, hdr.Uid, hdr.Gid, hdr.ModTime, layerTime)
		}
		e := tarEntry{Name: strings.TrimSuffix(hdr.Name, "/"), Type: hdr.Typeflag, Mode: hdr.Mode, Linkname: hdr.Linkname, Size: hdr.Size}
		if hdr.Typeflag == tar.TypeReg {
			h := sha256.New()
			io.Copy(h, tr)
			e.Digest = digest.NewDigest(digest.SHA256, h)
		}
		out = append(out, e)
	}
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
}
