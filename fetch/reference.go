package fetch

import (
	"errors"
	"fmt"
	"strings"

	"github.com/imgfs/imgfs/internal/oci"
	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2/registry"
)

// DockerHub is the registry that short names such as "nginx" live on.
const DockerHub = "docker.io"

// dockerHubAPIHost serves the registry API for docker.io.
const dockerHubAPIHost = "registry-1.docker.io"

// ErrInvalidReference marks a reference that cannot be parsed.
var ErrInvalidReference = errors.New("invalid reference")

// Reference is a normalised image reference. Tag and Digest may both be set;
// the digest then decides what is fetched and the tag only names it.
type Reference struct {
	Registry   string
	Repository string
	Tag        string
	Digest     digest.Digest
}

// ParseReference parses and normalises a reference the way docker and
// containerd do: "nginx" becomes "docker.io/library/nginx:latest", and a
// reference with neither tag nor digest gets the tag "latest".
func ParseReference(s string) (Reference, error) {
	invalid := func(why string) (Reference, error) {
		return Reference{}, fmt.Errorf("%w %q: %s", ErrInvalidReference, s, why)
	}
	if s == "" {
		return invalid("empty")
	}
	if strings.ContainsAny(s, " \t\n") {
		return invalid("contains white space")
	}
	name, dgst, hasDigest := strings.Cut(s, "@")
	var ref Reference
	if hasDigest {
		d := digest.Digest(dgst)
		if err := oci.CheckDigest(d); err != nil {
			return Reference{}, fmt.Errorf("%w %q: %w", ErrInvalidReference, s, err)
		}
		ref.Digest = d
	}
	// A tag follows the last colon after the last slash; a colon before it
	// is a port.
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name, ref.Tag = name[:i], name[i+1:]
		if ref.Tag == "" {
			return invalid("empty tag")
		}
	}
	ref.Registry, ref.Repository = splitDomain(name)
	if ref.Tag == "" && ref.Digest == "" {
		ref.Tag = "latest"
	}
	// oras validates each part against the distribution grammar.
	check := registry.Reference{Registry: ref.Registry, Repository: ref.Repository, Reference: ref.Tag}
	if err := check.ValidateRegistry(); err != nil {
		return invalid("bad registry host " + ref.Registry)
	}
	if err := check.ValidateRepository(); err != nil {
		return invalid("bad repository name " + ref.Repository + " (lowercase letters, digits and . _ - / only)")
	}
	if ref.Tag != "" {
		if err := check.ValidateReferenceAsTag(); err != nil {
			return invalid("bad tag " + ref.Tag)
		}
	}
	return ref, nil
}

// splitDomain separates the registry host from the repository. The first
// component is a host only if it looks like one, as docker decides it.
func splitDomain(name string) (host, repo string) {
	first, rest, ok := strings.Cut(name, "/")
	if !ok || !(strings.ContainsAny(first, ".:") || first == "localhost" || strings.ToLower(first) != first) {
		host, repo = DockerHub, name
	} else {
		host, repo = first, rest
	}
	if host == "index.docker.io" {
		host = DockerHub
	}
	if host == DockerHub && !strings.Contains(repo, "/") {
		repo = "library/" + repo
	}
	return host, repo
}

// String returns the full normalised reference,
// e.g. "docker.io/library/nginx:latest" or "host:5000/app:v1@sha256:...".
func (r Reference) String() string {
	s := r.Registry + "/" + r.Repository
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest.String()
	}
	return s
}

// Name returns the repository's full name without tag or digest.
func (r Reference) Name() string { return r.Registry + "/" + r.Repository }

// Object returns what the registry is asked for: the digest when there is
// one, else the tag.
func (r Reference) Object() string {
	if r.Digest != "" {
		return r.Digest.String()
	}
	return r.Tag
}

// APIHost returns the host that serves the registry API.
func (r Reference) APIHost() string {
	if r.Registry == DockerHub {
		return dockerHubAPIHost
	}
	return r.Registry
}
