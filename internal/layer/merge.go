package layer

import (
	"fmt"
	"time"
)

// OCI whiteout names (image-spec, "Whiteouts").
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	opaqueMarker   = ".wh..wh..opq"
)

// Merge builds the root filesystem of an image from its layers' indexes,
// base layer first, as the image-spec layer rules say:
//
//   - entries are applied in order and the last entry for a name wins, as
//     in extraction; a directory over a directory updates its metadata and
//     keeps its children, anything else replaces what was there;
//   - a whiteout ".wh.<name>" removes <name> (a whole subtree for a
//     directory) from the lower layers, and an opaque marker
//     ".wh..wh..opq" removes all of its directory's children from the lower
//     layers; neither touches files of its own layer, whatever their order,
//     and neither appears in the result; other ".wh..wh." names are
//     ignored;
//   - a hard link becomes another name for its target's inode; a target
//     that is missing, or a directory, makes the link a bad node.
//
// Entries that cannot be placed are listed in Tree.Bad.
func Merge(layers []*Index) *Tree {
	t := newTree()
	for n, idx := range layers {
		t.apply(idx, n, true)
	}
	t.finish()
	return t
}

// LayerTree builds one layer's own tree, with whiteout entries shown as the
// tar holds them. layer is the layer's position, recorded in the inodes.
func LayerTree(idx *Index, layer int) *Tree {
	t := newTree()
	t.apply(idx, layer, false)
	t.finish()
	return t
}

func newTree() *Tree {
	return &Tree{root: &Node{name: ".", inode: implicitDir(), dir: newDir()}}
}

// zeroTimeSec is the zero time.Time in Unix seconds: implicit directories
// modification time.
var zeroTimeSec = time.Time{}.Unix()

func implicitDir() *Inode {
	return &Inode{Entry: &Entry{Name: ".", Type: TypeDir, Mode: 0755, MTime: zeroTimeSec, Offset: -1}, Index: -1}
}

func (t *Tree) bad(layer, i int, e *Entry, reason string) {
	t.Bad = append(t.Bad, BadEntry{Layer: layer, Index: i, Name: e.Name, Reason: reason})
}

func (t *Tree) apply(idx *Index, layer int, whiteouts bool) {
	if whiteouts {
		// Whiteouts apply to the lower layers only, so they all go first.
		for i := range idx.Entries {
			e := &idx.Entries[i]
			if e.Bad != "" || !e.IsWhiteout() {
				continue
			}
			dir, b := splitName(e.Name)
			parent, ok := t.Lookup(dir)
			if !ok || parent.inode.Entry.Type != TypeDir {
				continue
			}
			switch {
			case b == opaqueMarker:
				clear(parent.dir.children)
			case len(b) >= len(whiteoutMeta) && b[:len(whiteoutMeta)] == whiteoutMeta:
			default:
				delete(parent.dir.children, b[len(whiteoutPrefix):])
			}
		}
	}
	for i := range idx.Entries {
		e := &idx.Entries[i]
		if e.Bad != "" {
			t.bad(layer, i, e, e.Bad)
			t.placeBad(layer, i, e)
			continue
		}
		dir, b := splitName(e.Name)
		if b == "." {
			if e.Type != TypeDir {
				t.bad(layer, i, e, "root is not a directory")
				continue
			}
			t.root.inode = &Inode{Entry: e, Layer: int32(layer), Index: int32(i)}
			continue
		}
		parent, err := t.mkdirAll(dir)
		if err != nil {
			t.bad(layer, i, e, err.Error())
			continue
		}
		if whiteouts && e.IsWhiteout() {
			continue
		}
		old := parent.dir.children[b]
		switch e.Type {
		case TypeHardlink:
			target, ok := t.Lookup(e.Linkname)
			var reason string
			switch {
			case !ok:
				reason = fmt.Sprintf("hard link target %q is missing", e.Linkname)
			case target.inode.Entry.Type == TypeDir:
				reason = fmt.Sprintf("hard link target %q is a directory", e.Linkname)
			case target.inode.Bad != "":
				reason = fmt.Sprintf("hard link target %q is bad", e.Linkname)
			}
			if reason != "" {
				t.bad(layer, i, e, reason)
				be := *e
				be.Type = TypeRegular
				parent.dir.children[b] = &Node{name: b, inode: &Inode{Entry: &be, Layer: int32(layer), Index: int32(i), Bad: reason}}
				continue
			}
			parent.dir.children[b] = &Node{name: b, inode: target.inode}
		case TypeDir:
			in := &Inode{Entry: e, Layer: int32(layer), Index: int32(i)}
			if old != nil && old.inode.Entry.Type == TypeDir {
				old.inode = in
				continue
			}
			parent.dir.children[b] = &Node{name: b, inode: in, dir: newDir()}
		default:
			parent.dir.children[b] = &Node{name: b, inode: &Inode{Entry: e, Layer: int32(layer), Index: int32(i)}}
		}
	}
}

// mkdirAll returns the directory dir, making implicit directories as
// extraction does. A component that exists and is not a directory is an
// error: the view never follows symlinks while placing entries.
func (t *Tree) mkdirAll(dir string) (*Node, error) {
	if dir == "." {
		return t.root, nil
	}
	n := t.root
	start := 0
	for i := 0; i <= len(dir); i++ {
		if i < len(dir) && dir[i] != '/' {
			continue
		}
		el := dir[start:i]
		start = i + 1
		c := n.dir.children[el]
		if c == nil {
			in := implicitDir()
			in.Entry.Name = dir[:i]
			c = &Node{name: el, inode: in, dir: newDir()}
			n.dir.children[el] = c
		} else if c.inode.Entry.Type != TypeDir {
			return nil, fmt.Errorf("parent %q is a %s, not a directory", dir[:i], c.inode.Entry.Type)
		}
		n = c
	}
	return n, nil
}

// placeBad puts an entry that must not be served at its name, when the name
// itself is sound (a file whose data is cut short, say), so that its path
// answers EIO instead of vanishing. Entries with unsound names, and
// whiteouts, are only listed in Tree.Bad.
func (t *Tree) placeBad(layer, i int, e *Entry) {
	if n, err := NormalizeName(e.Name); err != nil || n != e.Name || n == "." || e.IsWhiteout() {
		return
	}
	dir, b := splitName(e.Name)
	parent, err := t.mkdirAll(dir)
	if err != nil {
		return
	}
	be := *e
	if be.Type == TypeDir || be.Type == TypeHardlink {
		be.Type = TypeRegular
	}
	parent.dir.children[b] = &Node{name: b, inode: &Inode{Entry: &be, Layer: int32(layer), Index: int32(i), Bad: e.Bad}}
}
