package testregistry

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Pushed describes an image pushed by PushImage: the descriptors a client
// resolves and fetches, and the exact manifest and config bytes so tests can
// compare what they read against what was written.
//
// Manifest has no Platform set, so that it equals the descriptor a client
// gets by resolving the tag; Platform holds the image's platform instead, and
// Entry turns the pair into an index entry.
type Pushed struct {
	Repo          string
	Tag           string
	Manifest      ocispec.Descriptor
	ManifestBytes []byte
	Config        ocispec.Descriptor
	ConfigBytes   []byte
	Layers        []ocispec.Descriptor
	DiffIDs       []digest.Digest
	Platform      ocispec.Platform
}

// Entry returns the index entry that points at this image under its
// platform.
func (p Pushed) Entry() IndexEntry {
	return IndexEntry{Manifest: p.Manifest, Platform: p.Platform}
}

// PushImage builds img and pushes its layers, config and manifest to repo.
// With tag "" the manifest is pushed by digest only. Each layer is built into
// a temporary file under the registry's directory and streamed from there,
// so memory use does not grow with layer size; blobs the registry already
// has are not uploaded again.
func (r *Registry) PushImage(repo, tag string, img Image) (Pushed, error) {
	p := Pushed{Repo: repo, Tag: tag, Platform: img.platform()}
	for i, l := range img.Layers {
		b, err := l.build(r.dir, img.Docker)
		if err != nil {
			return p, fmt.Errorf("push %s: build layer %d: %w", repo, i, err)
		}
		err = r.pushFile(repo, b.path, b.desc)
		os.Remove(b.path)
		if err != nil {
			return p, fmt.Errorf("push %s: layer %d: %w", repo, i, err)
		}
		p.Layers = append(p.Layers, b.desc)
		p.DiffIDs = append(p.DiffIDs, b.diffID)
	}
	err := r.pushConfigAndManifest(img, &p)
	return p, err
}

// pushConfigAndManifest pushes the config listing p's diff_ids and the
// manifest of p's layers, both made for img, and records them in p.
func (r *Registry) pushConfigAndManifest(img Image, p *Pushed) error {
	cfg, err := img.configJSON(p.DiffIDs)
	if err != nil {
		return fmt.Errorf("push %s: %w", p.Repo, err)
	}
	p.ConfigBytes = cfg
	p.Config = ocispec.Descriptor{MediaType: img.configMediaType(), Digest: digest.FromBytes(cfg), Size: int64(len(cfg))}
	if err := r.pushBytes(p.Repo, cfg, p.Config); err != nil {
		return fmt.Errorf("push %s: config: %w", p.Repo, err)
	}
	man, err := img.manifestJSON(p.Config, p.Layers)
	if err != nil {
		return fmt.Errorf("push %s: %w", p.Repo, err)
	}
	p.ManifestBytes = man
	p.Manifest, err = r.PushManifest(p.Repo, p.Tag, img.manifestMediaType(), man)
	return err
}

// PushBlob uploads size bytes read from rd to repo and returns the blob's
// descriptor (media type application/octet-stream). The digest is computed
// while streaming (POST, one PATCH, then PUT ?digest=), so rd is read once
// and never held in memory. A negative size means unknown; otherwise a
// reader that yields a different number of bytes is an error.
func (r *Registry) PushBlob(repo string, rd io.Reader, size int64) (ocispec.Descriptor, error) {
	loc, err := r.startUpload(repo)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("push blob to %s: %w", repo, err)
	}
	digester := digest.Canonical.Digester()
	counter := &countWriter{}
	body := io.TeeReader(rd, io.MultiWriter(digester.Hash(), counter))
	if size >= 0 {
		// The registry keeps whatever arrives; cap the body so a reader
		// that is too long is caught below instead of being uploaded.
		body = io.LimitReader(body, size+1)
	}
	req, err := http.NewRequest(http.MethodPatch, loc.String(), body)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := r.client.Do(req)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("push blob to %s: %w", repo, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return ocispec.Descriptor{}, fmt.Errorf("push blob to %s: PATCH: %s", repo, resp.Status)
	}
	if size >= 0 && counter.n != size {
		return ocispec.Descriptor{}, fmt.Errorf("push blob to %s: reader gave %d bytes, size says %d", repo, counter.n, size)
	}
	desc := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digester.Digest(), Size: counter.n}
	next, err := r.location(resp)
	if err != nil {
		return desc, fmt.Errorf("push blob to %s: %w", repo, err)
	}
	if err := r.finishUpload(next, desc.Digest, http.NoBody, 0); err != nil {
		return desc, fmt.Errorf("push blob %s to %s: %w", desc.Digest, repo, err)
	}
	return desc, nil
}

// PushManifest puts body as a manifest of the given media type under
// reference, a tag or, when empty, the body's own digest. It checks that the
// registry's Docker-Content-Digest agrees. It is the escape hatch for
// hand-written or deliberately odd manifests.
func (r *Registry) PushManifest(repo, reference, mediaType string, body []byte) (ocispec.Descriptor, error) {
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(body), Size: int64(len(body))}
	if reference == "" {
		reference = desc.Digest.String()
	}
	req, err := http.NewRequest(http.MethodPut, r.apiURL(repo, "manifests", reference), bytes.NewReader(body))
	if err != nil {
		return desc, err
	}
	req.Header.Set("Content-Type", mediaType)
	resp, err := r.client.Do(req)
	if err != nil {
		return desc, fmt.Errorf("push manifest %s:%s: %w", repo, reference, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return desc, fmt.Errorf("push manifest %s:%s: %w", repo, reference, httpError(resp))
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != desc.Digest.String() {
		return desc, fmt.Errorf("push manifest %s:%s: registry says digest %s, body is %s", repo, reference, got, desc.Digest)
	}
	return desc, nil
}

// pushBytes uploads a small blob whose descriptor is already known.
func (r *Registry) pushBytes(repo string, b []byte, desc ocispec.Descriptor) error {
	if ok, err := r.blobExists(repo, desc.Digest); err != nil || ok {
		return err
	}
	loc, err := r.startUpload(repo)
	if err != nil {
		return err
	}
	return r.finishUpload(loc, desc.Digest, bytes.NewReader(b), desc.Size)
}

// pushFile uploads the blob in the file at path, monolithically, unless the
// registry already has it.
func (r *Registry) pushFile(repo, path string, desc ocispec.Descriptor) error {
	if ok, err := r.blobExists(repo, desc.Digest); err != nil || ok {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	loc, err := r.startUpload(repo)
	if err != nil {
		return err
	}
	return r.finishUpload(loc, desc.Digest, f, desc.Size)
}

// blobExists reports whether repo already has the blob, so that shared
// layers (the same fixture in two flavours) are uploaded once.
func (r *Registry) blobExists(repo string, d digest.Digest) (bool, error) {
	resp, err := r.client.Head(r.apiURL(repo, "blobs", d.String()))
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, fmt.Errorf("HEAD blob %s: %s", d, resp.Status)
}

// startUpload opens an upload session and returns its location.
func (r *Registry) startUpload(repo string) (*url.URL, error) {
	resp, err := r.client.Post(r.apiURL(repo, "blobs", "uploads/"), "", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return nil, fmt.Errorf("start upload: %w", httpError(resp))
	}
	return r.location(resp)
}

// finishUpload completes an upload with a PUT carrying the digest and,
// for a monolithic upload, the whole body.
func (r *Registry) finishUpload(loc *url.URL, d digest.Digest, body io.Reader, size int64) error {
	u := *loc
	q := u.Query()
	q.Set("digest", d.String())
	u.RawQuery = q.Encode()
	req, err := http.NewRequest(http.MethodPut, u.String(), body)
	if err != nil {
		return err
	}
	// An explicit length keeps the upload a plain, non-chunked body even
	// when body is an *os.File, which net/http cannot size by itself.
	req.ContentLength = size
	if size == 0 {
		req.Body = http.NoBody
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("finish upload: %w", httpError(resp))
	}
	return nil
}

// location resolves an upload response's Location header, which the
// registry may send relative or absolute.
func (r *Registry) location(resp *http.Response) (*url.URL, error) {
	loc, err := resp.Location()
	if err != nil {
		return nil, fmt.Errorf("upload response without Location: %w", err)
	}
	return loc, nil
}

// apiURL returns the /v2/ URL of a repository's manifests or blobs endpoint.
func (r *Registry) apiURL(repo, kind, ref string) string {
	return "http://" + r.host + "/v2/" + repo + "/" + kind + "/" + ref
}

// httpError turns an unexpected response into an error carrying the start
// of its body, where the registry explains itself.
func httpError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return fmt.Errorf("%s %s: %s: %s", resp.Request.Method, resp.Request.URL.Path, resp.Status, bytes.TrimSpace(b))
}
