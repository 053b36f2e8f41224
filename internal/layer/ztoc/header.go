package ztoc

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/imgfs/imgfs/internal/layer"
	"github.com/imgfs/imgfs/internal/oci"
)

// Header is what a zTOC records of an entry's tar headers beyond its
// layer.Entry: the fields as the tar spells them, before layer normalizes
// them. SOCI's snapshotter reads an entry's headers from the tar before it
// serves the file, and compares them with the zTOC (fs/reader's Verify:
// name, link target, mode, owner, devices, size, time and extended
// attributes must all agree), so a zTOC written from normalized names
// would have it refuse every file the tar names otherwise
// ("./etc/passwd").
type Header struct {
	// Name and Linkname are as recorded; Linkname for every type, as
	// archive/tar returns it.
	Name, Linkname string
	// Mode is the whole mode field, file type bits and all.
	Mode         int64
	Uname, Gname string
	// Devmajor and Devminor are as recorded, whatever the type.
	Devmajor, Devminor int64
	// PAX holds all of the entry's PAX records; Encode writes them, sorted
	// by key, in the field named xattrs.
	PAX map[string]string
}

// headerFrom makes the Header of an entry that has none: its fields as
// the entry holds them, normalized names included, and its extended
// attributes as SCHILY.xattr records.
func headerFrom(e *layer.Entry) Header {
	h := Header{Name: e.Name, Linkname: e.Linkname, Mode: int64(e.Mode), Devmajor: e.Devmajor, Devminor: e.Devminor}
	if len(e.Xattrs) > 0 {
		h.PAX = make(map[string]string, len(e.Xattrs))
		for k, v := range e.Xattrs {
			h.PAX[xattrPrefix+k] = v
		}
	}
	return h
}

// typeStrings are the zTOC type strings of imgfs's types, the inverse of
// types.
var typeStrings = map[layer.Type]string{}

func init() {
	for s, t := range types {
		typeStrings[t] = s
	}
}

// checkEntry returns why entry e, whose headers are h, cannot be written
// to a zTOC that both Parse and SOCI read back as the same file, or nil.
// The reasons are in the package doc, under "What a zTOC cannot hold".
// Where e came from a tar, h came from the same header, and the checks that
// they agree hold by construction; they are there for a TOC made by hand.
func checkEntry(e *layer.Entry, h *Header) error {
	switch {
	case e.Bad != "":
		return errors.New(e.Bad)
	case e.Sparse:
		// SOCI records a sparse file's logical size and derives the next
		// entry's headers from it; the tar holds less than that.
		return errors.New("a sparse file, whose holes a zTOC cannot record")
	case typeStrings[e.Type] == "":
		return fmt.Errorf("type %s has no zTOC type", e.Type)
	case e.UID < 0 || e.UID > math.MaxUint32 || e.GID < 0 || e.GID > math.MaxUint32:
		return fmt.Errorf("owner %d:%d does not fit a zTOC's 32-bit uid and gid", e.UID, e.GID)
	case e.Type == layer.TypeRegular && e.Size < 0:
		return fmt.Errorf("size %d", e.Size)
	}
	if _, err := e.ModTime().MarshalText(); err != nil {
		return fmt.Errorf("modification time %v has no RFC 3339 form", e.ModTime())
	}
	if name, err := layer.NormalizeName(h.Name); err != nil || name != e.Name {
		return fmt.Errorf("header name %s does not normalize to the entry's", oci.Quote(h.Name))
	}
	if err := checkLink(e, h); err != nil {
		return err
	}
	if h.Mode&07777 != int64(e.Mode) {
		return fmt.Errorf("header mode %o does not hold the entry's %o", h.Mode, e.Mode)
	}
	if (e.Type == layer.TypeChar || e.Type == layer.TypeBlock) && (h.Devmajor != e.Devmajor || h.Devminor != e.Devminor) {
		return fmt.Errorf("header device %d,%d is not the entry's %d,%d", h.Devmajor, h.Devminor, e.Devmajor, e.Devminor)
	}
	return checkPAX(e, h)
}

// checkLink checks a link's target: Parse reads it for the two link types
// only, normalizing a hard link's.
func checkLink(e *layer.Entry, h *Header) error {
	switch e.Type {
	case layer.TypeSymlink:
		if h.Linkname != e.Linkname {
			return fmt.Errorf("header link target %s is not the entry's", oci.Quote(h.Linkname))
		}
	case layer.TypeHardlink:
		if target, err := layer.NormalizeName(h.Linkname); err != nil || target != e.Linkname {
			return fmt.Errorf("header link target %s does not normalize to the entry's", oci.Quote(h.Linkname))
		}
	default:
		return nil
	}
	if len(h.Linkname) > DefaultMaxString {
		return fmt.Errorf("link target of %d bytes, over the %d Parse reads", len(h.Linkname), DefaultMaxString)
	}
	return nil
}

// checkPAX checks the PAX records: within Parse's limits, the extended
// attributes those of the entry, and no GNU sparse record on a regular
// file, which Parse would take for a sparse one.
func checkPAX(e *layer.Entry, h *Header) error {
	xattrs := 0
	for k, v := range h.PAX {
		if len(k) > DefaultMaxString {
			return fmt.Errorf("PAX record key of %d bytes, over the %d Parse reads", len(k), DefaultMaxString)
		}
		switch {
		case strings.HasPrefix(k, xattrPrefix):
			if len(v) > DefaultMaxString {
				return fmt.Errorf("extended attribute %s of %d bytes, over the %d Parse reads", oci.Quote(k), len(v), DefaultMaxString)
			}
			if got, ok := e.Xattrs[k[len(xattrPrefix):]]; !ok || got != v {
				return fmt.Errorf("PAX record %s is not among the entry's extended attributes", oci.Quote(k))
			}
			xattrs++
		case strings.HasPrefix(k, sparsePrefix) && e.Type == layer.TypeRegular:
			return fmt.Errorf("PAX record %s marks a sparse file", oci.Quote(k))
		}
	}
	if xattrs != len(e.Xattrs) {
		return fmt.Errorf("%d extended attributes, but %d SCHILY.xattr records", len(e.Xattrs), xattrs)
	}
	return nil
}

// linkTargets are the names a hard link may point at in SOCI's metadata
// reader, which refuses the whole layer over a hard link whose target is
// not yet in its tree: the entries so far and the directories they imply,
// and the root.
type linkTargets map[string]bool

// add adds an entry's name and its parents.
func (l linkTargets) add(name string) {
	for name != "." && !l[name] {
		l[name] = true
		i := strings.LastIndexByte(name, '/')
		if i < 0 {
			return
		}
		name = name[:i]
	}
}

// check returns why hard link e's target cannot be resolved, or nil.
func (l linkTargets) check(e *layer.Entry) error {
	if e.Type != layer.TypeHardlink || e.Linkname == "." || l[e.Linkname] {
		return nil
	}
	return fmt.Errorf("hard link target %s is not an entry before it, which SOCI's snapshotter refuses", oci.Quote(e.Linkname))
}

// paxRecords returns h's PAX records sorted by key, as SOCI writes them.
func (h *Header) paxRecords() [][2]string {
	if len(h.PAX) == 0 {
		return nil
	}
	recs := make([][2]string, 0, len(h.PAX))
	for _, k := range slices.Sorted(maps.Keys(h.PAX)) {
		recs = append(recs, [2]string{k, h.PAX[k]})
	}
	return recs
}
