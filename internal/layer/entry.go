package layer

import (
	"archive/tar"
	"time"
)

// Type is the kind of file a tar entry makes.
type Type uint8

// The file types a layer can hold. The zero Type is not valid.
const (
	TypeRegular Type = iota + 1
	TypeDir
	TypeSymlink
	TypeHardlink
	TypeChar
	TypeBlock
	TypeFifo
)

var typeNames = [...]string{"invalid", "regular", "dir", "symlink", "hardlink", "char", "block", "fifo"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "invalid"
}

// Entry is one tar entry of a layer, as the tar records it, with its name
// normalized. Metadata is as recorded: nothing is taken from the host.
type Entry struct {
	// Name is the normalized path (see NormalizeName), "." for the root.
	// For a bad entry whose name cannot be normalized it is the raw name.
	Name string
	Type Type
	// Sparse marks a GNU sparse file (old GNU or PAX formats). (It sits
	// here, beside Type, Mode and MTimeNsec, so the struct has no padding:
	// an index holds one Entry per tar entry, 128 bytes on 64-bit
	// platforms.)
	Sparse bool
	// Mode holds the permission, setuid, setgid and sticky bits (07777).
	Mode uint16
	// MTimeNsec and MTime are the modification time (see ModTime): the
	// nanoseconds within the second, and the seconds since the Unix epoch.
	// They are kept apart, not as a time.Time (24 bytes), to keep the
	// Entry small, and not as one count of nanoseconds, which would not
	// reach every time a tar can record.
	MTimeNsec uint32
	UID, GID  int
	MTime     int64
	// Size is the logical size of a regular file; 0 for other types.
	Size int64
	// Linkname is a symlink's target as recorded, or a hard link's target
	// normalized like Name.
	Linkname string
	// Xattrs are the PAX SCHILY.xattr.* records, keyed without the prefix.
	Xattrs             map[string]string
	Devmajor, Devminor int64
	// Offset is where the entry's first header block (including any PAX or
	// GNU long-name header before it) starts in the uncompressed tar
	// stream; archive/tar can read the entry again from there. It is -1 when
	// the layer is served without a tar stream (eStargz).
	Offset int64
	// DataOffset is where a regular file's content starts in the
	// uncompressed stream. For a sparse file it is where the stored data
	// begins; its content must be read through archive/tar from Offset.
	DataOffset int64
	// Bad says why the entry cannot be placed in a tree; "" when it can.
	Bad string
}

// ModTime is the modification time, in UTC.
func (e *Entry) ModTime() time.Time { return time.Unix(e.MTime, int64(e.MTimeNsec)).UTC() }

// SetModTime sets the modification time.
func (e *Entry) SetModTime(t time.Time) {
	e.MTime, e.MTimeNsec = t.Unix(), uint32(t.Nanosecond())
}

// IsWhiteout reports whether the entry is an OCI whiteout (".wh.<name>")
// or opaque marker (".wh..wh..opq"), which Merge applies instead of
// placing.
func (e *Entry) IsWhiteout() bool {
	b := base(e.Name)
	return len(b) > len(whiteoutPrefix) && b[:len(whiteoutPrefix)] == whiteoutPrefix
}

func base(name string) string {
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '/' {
			return name[i+1:]
		}
	}
	return name
}

// typeOf maps a tar typeflag to a Type; ok is false for types that make
// no file.
func typeOf(flag byte) (t Type, ok bool) {
	switch flag {
	case tar.TypeReg, tar.TypeCont, tar.TypeGNUSparse, 0 /* TypeRegA, deprecated but still written */ :
		return TypeRegular, true
	case tar.TypeDir:
		return TypeDir, true
	case tar.TypeSymlink:
		return TypeSymlink, true
	case tar.TypeLink:
		return TypeHardlink, true
	case tar.TypeChar:
		return TypeChar, true
	case tar.TypeBlock:
		return TypeBlock, true
	case tar.TypeFifo:
		return TypeFifo, true
	}
	return 0, false
}
