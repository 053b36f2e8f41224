package cache

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Sources records where blobs came from, one "registry/repository" per
// line, the way containerd's distribution-source labels do. A lazy reader
// in a later process uses it to know where missing bytes can be fetched.

func (s *Store) sourcesPath(d digest.Digest) string {
	return filepath.Join(s.root, "sources", d.Algorithm().String(), d.Encoded())
}

// AddSource records that blob d can be fetched from repository (a full name
// such as "docker.io/library/nginx").
func (s *Store) AddSource(d digest.Digest, repository string) error {
	known, err := s.Sources(d)
	if err != nil || slices.Contains(known, repository) {
		return err
	}
	f, err := os.OpenFile(s.sourcesPath(d), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	// One short O_APPEND write is atomic, so concurrent writers interleave
	// whole lines.
	_, werr := f.WriteString(repository + "\n")
	return errors.Join(werr, f.Close())
}

// Sources returns the repositories blob d is known to come from.
func (s *Store) Sources(d digest.Digest) ([]string, error) {
	f, err := os.Open(s.sourcesPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var repos []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !slices.Contains(repos, line) {
			repos = append(repos, line)
		}
	}
	return repos, sc.Err()
}
