package cache

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"unicode"

	"github.com/opencontainers/go-digest"

	"github.com/imgfs/imgfs/internal/oci"
)

// Sources records where blobs came from, one "registry/repository" per
// line, the way containerd's distribution-source labels do. A lazy reader
// in a later process uses it to know where missing bytes can be fetched.

// maxRepositoryName bounds a recorded repository name.
const maxRepositoryName = 512

// AddSource records that blob d can be fetched from repository (a full name
// such as "docker.io/library/nginx").
func (s *Store) AddSource(d digest.Digest, repository string) error {
	path, err := s.sourcesPath(d)
	if err != nil {
		return fmt.Errorf("add source: %w", err)
	}
	if repository == "" || len(repository) > maxRepositoryName || strings.IndexFunc(repository, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}) >= 0 {
		return fmt.Errorf("add source of %s: repository name %s is not one line without spaces", d, oci.Quote(repository))
	}
	known, err := s.Sources(d)
	if err != nil || slices.Contains(known, repository) {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	// One short O_APPEND write is atomic, so concurrent writers interleave
	// whole lines.
	_, werr := f.WriteString(repository + "\n")
	return errors.Join(werr, f.Close())
}

// Sources returns the repositories blob d is known to come from.
func (s *Store) Sources(d digest.Digest) ([]string, error) {
	path, err := s.sourcesPath(d)
	if err != nil {
		return nil, fmt.Errorf("sources: %w", err)
	}
	f, err := os.Open(path)
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
