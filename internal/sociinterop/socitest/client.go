package socitest

import (
	"bytes"
	_ "crypto/sha256" // go-digest needs sha256 registered
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrNotFound is what Client's reads return, wrapped, on a 404.
var ErrNotFound = errors.New("not found")

// Client pushes to and reads from a registry over plain HTTP, through the
// distribution API alone, so that one code path serves both registries
// of the tests: the Debian docker-registry (distribution 2.8, no
// referrers API) that testregistry starts, and ReferrersRegistry.
type Client struct {
	// Host is "127.0.0.1:PORT".
	Host string
	HTTP *http.Client
}

// NewClient returns a client of the registry at host.
func NewClient(host string) *Client {
	return &Client{Host: host, HTTP: &http.Client{Timeout: time.Minute}}
}

// manifestAccept is the Accept of every manifest GET: distribution 2.8
// answers 404 to a GET of an OCI index without it.
var manifestAccept = strings.Join([]string{
	ocispec.MediaTypeImageManifest,
	ocispec.MediaTypeImageIndex,
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
}, ", ")

func (c *Client) url(repo, kind, ref string) string {
	return "http://" + c.Host + "/v2/" + repo + "/" + kind + "/" + ref
}

func digestOf(b []byte) digest.Digest { return digest.FromBytes(b) }

// PushBlob uploads b to repo, unless the registry has it, and returns its
// descriptor (media type application/octet-stream).
func (c *Client) PushBlob(repo string, b []byte) (ocispec.Descriptor, error) {
	desc := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digestOf(b), Size: int64(len(b))}
	head, err := c.HTTP.Head(c.url(repo, "blobs", desc.Digest.String()))
	if err != nil {
		return desc, err
	}
	head.Body.Close()
	if head.StatusCode == http.StatusOK {
		return desc, nil
	}
	resp, err := c.HTTP.Post(c.url(repo, "blobs", "uploads/"), "", nil)
	if err != nil {
		return desc, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return desc, fmt.Errorf("push blob to %s: POST: %s", repo, resp.Status)
	}
	loc, err := resp.Location()
	if err != nil {
		return desc, fmt.Errorf("push blob to %s: %w", repo, err)
	}
	q := loc.Query()
	q.Set("digest", desc.Digest.String())
	loc.RawQuery = q.Encode()
	req, err := http.NewRequest(http.MethodPut, loc.String(), bytes.NewReader(b))
	if err != nil {
		return desc, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = c.HTTP.Do(req)
	if err != nil {
		return desc, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return desc, fmt.Errorf("push blob %s to %s: %w", desc.Digest, repo, httpError(resp))
	}
	return desc, nil
}

// PushManifest puts body, of the given media type, under reference: a
// tag, or its own digest when reference is "".
func (c *Client) PushManifest(repo, reference, mediaType string, body []byte) (ocispec.Descriptor, error) {
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digestOf(body), Size: int64(len(body))}
	if reference == "" {
		reference = desc.Digest.String()
	}
	req, err := http.NewRequest(http.MethodPut, c.url(repo, "manifests", reference), bytes.NewReader(body))
	if err != nil {
		return desc, err
	}
	req.Header.Set("Content-Type", mediaType)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return desc, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return desc, fmt.Errorf("push manifest %s:%s: %w", repo, reference, httpError(resp))
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != desc.Digest.String() {
		return desc, fmt.Errorf("push manifest %s:%s: registry says %s, body is %s", repo, reference, got, desc.Digest)
	}
	return desc, nil
}

// Manifest fetches the manifest or index under reference, a tag or a
// digest, and returns its bytes and Content-Type.
func (c *Client) Manifest(repo, reference string) ([]byte, string, error) {
	req, err := http.NewRequest(http.MethodGet, c.url(repo, "manifests", reference), nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Accept", manifestAccept)
	return c.get(req)
}

// Blob fetches a whole blob and checks its digest.
func (c *Client) Blob(repo string, d digest.Digest) ([]byte, error) {
	req, err := http.NewRequest(http.MethodGet, c.url(repo, "blobs", d.String()), nil)
	if err != nil {
		return nil, err
	}
	b, _, err := c.get(req)
	if err == nil && digestOf(b) != d {
		err = fmt.Errorf("blob %s: registry sent bytes hashing to %s", d, digestOf(b))
	}
	return b, err
}

// ReferrersAPI asks GET /v2/<repo>/referrers/<subject> and returns the
// index the registry answers with; a registry without the API answers
// 404, which is ErrNotFound.
func (c *Client) ReferrersAPI(repo string, subject digest.Digest) (ocispec.Index, error) {
	var index ocispec.Index
	req, err := http.NewRequest(http.MethodGet, c.url(repo, "referrers", subject.String()), nil)
	if err != nil {
		return index, err
	}
	req.Header.Set("Accept", ocispec.MediaTypeImageIndex)
	b, _, err := c.get(req)
	if err != nil {
		return index, err
	}
	if err := json.Unmarshal(b, &index); err != nil {
		return index, fmt.Errorf("referrers of %s: %w", subject, err)
	}
	return index, nil
}

func (c *Client) get(req *http.Request) ([]byte, string, error) {
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, "", fmt.Errorf("GET %s: %w", req.URL.Path, ErrNotFound)
	default:
		return nil, "", httpError(resp)
	}
	b, err := io.ReadAll(resp.Body)
	return b, resp.Header.Get("Content-Type"), err
}

// httpError describes an unexpected answer with the start of its body,
// where a registry explains itself.
func httpError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return fmt.Errorf("%s %s: %s: %s", resp.Request.Method, resp.Request.URL.Path, resp.Status, bytes.TrimSpace(b))
}
