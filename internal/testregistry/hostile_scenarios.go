package testregistry

import (
	"bytes"
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Outcome is what a client must make of a hostile scenario.
type Outcome int

const (
	// MustFail: the scenario is a lie that no client may accept.
	MustFail Outcome = iota
	// MustSucceed: the answers are odd but honest, and a client must
	// accept them.
	MustSucceed
	// MayRefuse: the answers are honest but use something a client may
	// choose not to support (a sha512 digest), or a claim a lazy client
	// may accept until bytes arrive (an absurd size). The client either
	// refuses with an error or serves exactly the right bytes.
	MayRefuse
)

// String names the outcome for test logs.
func (o Outcome) String() string {
	return [...]string{"must fail", "must succeed", "may refuse"}[o]
}

// HostileScenario is one crafted lie, installed in a Hostile registry as
// its own repository with one tag.
type HostileScenario struct {
	// Name is short and stable, for test names: TestHostileFetch/<Name>.
	Name string
	// Repo and Tag locate it in the hostile registry.
	Repo, Tag string
	// Lie says in one line what is wrong with the answers.
	Lie string
	// Outcome is what a client must make of it.
	Outcome Outcome
	// Layer is the layer descriptor as the manifest states it, and
	// LayerBytes the bytes the registry serves for it (nil when it serves
	// none). A test that mounts the image reads Layer and compares.
	Layer      ocispec.Descriptor
	LayerBytes []byte
	// MaxRequests, when positive, bounds the requests a client may send
	// to the repository for one fetch or mount: the walk must visit each
	// digest once, not once per path to it.
	MaxRequests int
}

// Reference returns the scenario's image reference in h.
func (s HostileScenario) Reference(h *Hostile) string { return h.Reference(s.Repo, s.Tag) }

// Sizes of the hostile scenarios' graphs, exported for test messages.
const (
	// BombDepth is the number of indexes in the DAG bomb's chain; each
	// lists the next twice, so a walk without de-duplication makes
	// 2^BombDepth visits.
	BombDepth = 40
	// WideEntries is the number of identical entries in the wide index.
	WideEntries = 20000
	// AbsurdSize is the layer size the absurd-size scenario claims: 15 TiB.
	AbsurdSize = 15 << 40
	// hostileLayerSize is the size of the random file in the honest
	// layer, enough for several range requests.
	hostileLayerSize = 256 << 10
	// traversalDepth is the number of "../" in the traversal digest: more
	// than any cache directory is deep, so the path climbs to / and then
	// down to the victim.
	traversalDepth = 32
)

// InstallHostileScenarios installs every scenario in h and returns them in
// a fixed order. victim is an existing regular file outside any cache (an
// absolute path) that the traversal scenario's layer digest points at, with
// the victim's size; the test checks it is never touched.
func InstallHostileScenarios(h *Hostile, victim string) ([]HostileScenario, error) {
	if !strings.HasPrefix(victim, "/") {
		return nil, fmt.Errorf("hostile scenarios: victim %q is not an absolute path", victim)
	}
	st, err := os.Stat(victim)
	if err != nil {
		return nil, fmt.Errorf("hostile scenarios: %w", err)
	}
	img, err := newHonestImage()
	if err != nil {
		return nil, err
	}
	s512 := sha512.Sum512(img.layer)
	sumMD5 := md5.Sum(img.layer)
	real := img.layerDesc
	withDigest := func(d string) ocispec.Descriptor {
		l := real
		l.Digest = digest.Digest(d)
		return l
	}
	withSize := func(n int64) ocispec.Descriptor {
		l := real
		l.Size = n
		return l
	}
	traversal := ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageLayer,
		Digest:    digest.Digest("sha256:" + strings.Repeat("../", traversalDepth) + strings.TrimPrefix(victim, "/")),
		Size:      st.Size(),
	}
	// Each layer lie is one manifest whose only wrong value is the layer
	// descriptor; the registry serves the real bytes under the lying
	// digest, so a client that follows the lie gets real data, not a 404.
	layerLies := []struct {
		name, lie string
		outcome   Outcome
		layer     ocispec.Descriptor
		serve     bool
	}{
		{"digest-traversal", "layer digest is sha256:../../…/" + strings.TrimPrefix(victim, "/"), MustFail, traversal, false},
		{"digest-no-algorithm", "layer digest has no algorithm", MustFail, withDigest(real.Digest.Encoded()), true},
		{"digest-short-hex", "layer digest has 12 hex digits", MustFail, withDigest("sha256:" + real.Digest.Encoded()[:12]), true},
		{"digest-uppercase-hex", "layer digest is in uppercase hex", MustFail, withDigest("sha256:" + strings.ToUpper(real.Digest.Encoded())), true},
		{"digest-unknown-algorithm", "layer digest is md5", MustFail, withDigest("md5:" + hex.EncodeToString(sumMD5[:])), true},
		{"digest-sha512", "layer digest is a valid sha512 of the served bytes", MayRefuse, withDigest("sha512:" + hex.EncodeToString(s512[:])), true},
		{"size-negative", "layer size is -1", MustFail, withSize(-1), true},
		{"size-absurd", "layer size is 15 TiB", MayRefuse, withSize(AbsurdSize), true},
	}
	var out []HostileScenario
	for _, l := range layerLies {
		repo := "hostile/" + l.name
		m, err := img.manifest([]ocispec.Descriptor{l.layer})
		if err != nil {
			return nil, err
		}
		img.installBase(h, repo)
		h.SetManifest(repo, "v1", m)
		h.SetManifest(repo, digest.FromBytes(m.Body).String(), m)
		s := HostileScenario{Name: l.name, Repo: repo, Tag: "v1", Lie: l.lie, Outcome: l.outcome, Layer: l.layer}
		if l.serve {
			h.SetBlob(repo, l.layer.Digest, img.layer)
			s.LayerBytes = img.layer
		}
		out = append(out, s)
	}

	honest, err := img.manifest([]ocispec.Descriptor{real})
	if err != nil {
		return nil, err
	}
	honestDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(honest.Body), Size: int64(len(honest.Body))}

	// The DAG bomb: index i lists index i+1 twice, the last lists the
	// honest manifest twice.
	{
		repo := "hostile/dag-bomb"
		img.installBase(h, repo)
		h.SetManifest(repo, honestDesc.Digest.String(), honest)
		next := honestDesc
		var top Answer
		for i := 0; i < BombDepth; i++ {
			idx, err := indexAnswer([]ocispec.Descriptor{next, next})
			if err != nil {
				return nil, err
			}
			next = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromBytes(idx.Body), Size: int64(len(idx.Body))}
			h.SetManifest(repo, next.Digest.String(), idx)
			top = idx
		}
		h.SetManifest(repo, "v1", top)
		out = append(out, HostileScenario{
			Name: "dag-bomb", Repo: repo, Tag: "v1", Outcome: MustFail, Layer: real, LayerBytes: img.layer,
			Lie: fmt.Sprintf("a chain of %d indexes, each listing the next twice", BombDepth),
		})
	}

	// The wide index: many identical entries, honest and valid.
	{
		repo := "hostile/wide-index"
		img.installBase(h, repo)
		h.SetManifest(repo, honestDesc.Digest.String(), honest)
		entry := honestDesc
		entry.Platform = &ocispec.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
		entries := make([]ocispec.Descriptor, WideEntries)
		for i := range entries {
			entries[i] = entry
		}
		idx, err := indexAnswer(entries)
		if err != nil {
			return nil, err
		}
		if len(idx.Body) >= 4<<20 {
			return nil, fmt.Errorf("hostile scenarios: wide index is %d bytes, over the 4 MiB metadata limit a client may apply", len(idx.Body))
		}
		h.SetManifest(repo, "v1", idx)
		h.SetManifest(repo, digest.FromBytes(idx.Body).String(), idx)
		out = append(out, HostileScenario{
			Name: "wide-index", Repo: repo, Tag: "v1", Outcome: MustSucceed, Layer: real, LayerBytes: img.layer,
			Lie:         fmt.Sprintf("an index of %d identical entries (not a lie: it must work)", WideEntries),
			MaxRequests: 20,
		})
	}

	// Header lies on an honest manifest.
	for _, l := range []struct {
		name, lie string
		a         Answer
	}{
		{"manifest-stalled", "the manifest body stops half way and the connection stays open",
			Answer{ContentType: honest.ContentType, Body: honest.Body, StallAfter: len(honest.Body) / 2}},
		{"content-digest-garbage", "Docker-Content-Digest is not a digest",
			Answer{ContentType: honest.ContentType, Body: honest.Body, Header: map[string][]string{"Docker-Content-Digest": {"this-is-not-a-digest"}}}},
	} {
		repo := "hostile/" + l.name
		img.installBase(h, repo)
		h.SetManifest(repo, "v1", l.a)
		h.SetManifest(repo, honestDesc.Digest.String(), honest)
		out = append(out, HostileScenario{Name: l.name, Repo: repo, Tag: "v1", Lie: l.lie, Outcome: MustFail, Layer: real, LayerBytes: img.layer})
	}
	return out, nil
}

// honestImage is a small real image built in memory: one uncompressed tar
// layer of random bytes and a config whose diff_id matches it.
type honestImage struct {
	layer      []byte
	layerDesc  ocispec.Descriptor
	config     []byte
	configDesc ocispec.Descriptor
}

func newHonestImage() (*honestImage, error) {
	l := TarLayer(Uncompressed, RandomFile("data/hostile.bin", 7007, hostileLayerSize))
	var buf bytes.Buffer
	diffID, err := l.writeCompressedTar(&buf)
	if err != nil {
		return nil, err
	}
	img := &honestImage{layer: buf.Bytes()}
	img.layerDesc = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(img.layer), Size: int64(len(img.layer))}
	spec := Image{Layers: []Layer{l}, Platform: ocispec.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}}
	if img.config, err = spec.configJSON([]digest.Digest{diffID}); err != nil {
		return nil, err
	}
	img.configDesc = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(img.config), Size: int64(len(img.config))}
	return img, nil
}

// installBase serves the honest config and layer in repo.
func (img *honestImage) installBase(h *Hostile, repo string) {
	h.SetBlob(repo, img.configDesc.Digest, img.config)
	h.SetBlob(repo, img.layerDesc.Digest, img.layer)
}

// manifest returns an OCI manifest of the honest config and the given
// layers.
func (img *honestImage) manifest(layers []ocispec.Descriptor) (Answer, error) {
	body, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    img.configDesc,
		Layers:    layers,
	})
	return Answer{ContentType: ocispec.MediaTypeImageManifest, Body: body}, err
}

func indexAnswer(manifests []ocispec.Descriptor) (Answer, error) {
	body, err := json.Marshal(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: manifests,
	})
	return Answer{ContentType: ocispec.MediaTypeImageIndex, Body: body}, err
}
