package oci

import (
	"errors"
	"fmt"
	"strings"
)

// maxLength bounds a media type. RFC 6838 allows 127 characters for each of
// type and subtype; real ones are under 80 in all.
const maxLength = 255

// ErrInvalidMediaType marks a media type that is not of the form type/subtype.
var ErrInvalidMediaType = errors.New("invalid media type")

// Check reports whether s has the shape RFC 6838 gives a media type without
// parameters: type "/" subtype, each a restricted-name (a letter or digit,
// then letters, digits and !#$&-^_.+), at most maxLength bytes in all. It
// says nothing of whether imgfs knows the type. The error quotes s, so it
// is one line whatever s holds.
func Check(s string) error {
	invalid := func(why string) error {
		if len(s) > 80 {
			return fmt.Errorf("%w %.80q…: %s", ErrInvalidMediaType, s, why)
		}
		return fmt.Errorf("%w %q: %s", ErrInvalidMediaType, s, why)
	}
	switch {
	case s == "":
		return invalid("missing")
	case len(s) > maxLength:
		return invalid(fmt.Sprintf("%d bytes long, over %d", len(s), maxLength))
	}
	typ, sub, ok := strings.Cut(s, "/")
	if !ok {
		return invalid("want type/subtype")
	}
	if !restrictedName(typ) {
		return invalid("bad type")
	}
	if !restrictedName(sub) {
		return invalid("bad subtype")
	}
	return nil
}

// restrictedName reports whether s is an RFC 6838 restricted-name of at
// most 127 characters.
func restrictedName(s string) bool {
	if s == "" || len(s) > 127 || !alnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !alnum(c) && !strings.ContainsRune("!#$&-^_.+", rune(c)) {
			return false
		}
	}
	return true
}

func alnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
