package layer

import (
	"errors"
	"path"
	"strings"
)

// Reasons a name is refused by NormalizeName.
var (
	ErrEmptyName  = errors.New("empty name")
	ErrEscapes    = errors.New("name escapes the root")
	ErrNULInName  = errors.New("NUL byte in name")
	ErrNameTooBig = errors.New("name longer than 4096 bytes")
)

const maxNameLen = 4096

// NormalizeName turns an untrusted tar name into a clean path relative to
// the root: "." for the root itself, otherwise "a/b" with no leading "/"
// or "./", no empty, "." or ".." elements and no trailing "/".
//
// Like umoci's CleanPath, a leading "/" is dropped and "//" collapses, so
// "/etc//passwd" and "./etc/passwd" both name "etc/passwd". Unlike umoci,
// which clamps "../x" to "x", a name whose ".." would climb above the root
// is refused with ErrEscapes: such an entry only comes from a crafted tar,
// and the view reports it instead of placing it somewhere it did not ask
// for.
func NormalizeName(name string) (string, error) {
	if name == "" {
		return "", ErrEmptyName
	}
	if len(name) > maxNameLen {
		return "", ErrNameTooBig
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", ErrNULInName
	}
	rel := strings.TrimLeft(name, "/")
	depth := 0
	for _, el := range strings.Split(rel, "/") {
		switch el {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return "", ErrEscapes
			}
		default:
			depth++
		}
	}
	return path.Clean("/" + rel)[1:] + dotIfEmpty(rel), nil
}

// dotIfEmpty completes NormalizeName's result for the root: path.Clean of
// "/" is "/", which trims to "".
func dotIfEmpty(rel string) string {
	if path.Clean("/"+rel) == "/" {
		return "."
	}
	return ""
}

// splitName returns a normalized name's parent and base; the root's parent
// is "".
func splitName(name string) (dir, file string) {
	if name == "." {
		return "", "."
	}
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return ".", name
	}
	return name[:i], name[i+1:]
}
