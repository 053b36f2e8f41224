package layer

import (
	"sort"
	"strings"
)

// Tree is a read-only file tree built once: one layer's own tree
// (LayerTree) or the merged root filesystem (Merge). It is safe for
// concurrent readers once built.
type Tree struct {
	root *Node
	// Bad lists the entries that could not be placed, in layer order.
	Bad []BadEntry
}

// BadEntry is an entry left out of a tree, or placed as a node that must
// not be served, and why.
type BadEntry struct {
	Layer  int // position of the layer in the image, 0 for the base
	Index  int // entry index in that layer's Index
	Name   string
	Reason string
}

// Node is a directory entry: a name pointing at an Inode. Several nodes
// share one Inode when they are hard links.
type Node struct {
	name  string
	inode *Inode
	// dir holds a directory's entries; nil for other files, so that a
	// file's node takes 32 bytes, not 64 (a tree holds one per entry).
	dir *dirEntries
}

// dirEntries are a directory's entries: children index them while the
// tree is built; finish drops it, and lookups search sorted.
type dirEntries struct {
	children map[string]*Node
	sorted   []*Node
}

func newDir() *dirEntries { return &dirEntries{children: map[string]*Node{}} }

// Inode is a file: its metadata and where its bytes come from.
type Inode struct {
	// Entry is the tar entry that made the file, with Type never
	// TypeHardlink. Implicit directories (parents no entry named) get mode
	// 0755, owner 0:0 and a zero ModTime. It points into the layer's
	// Index (the tree holds no copy of it; a bad node's is its own), and
	// must not be modified.
	Entry *Entry
	// Layer and Index locate that entry: Index is -1 for an implicit
	// directory. A regular file's bytes are served by that layer's
	// ReadFile(Index, ...). (They, and Nlink, are 32-bit so that an Inode
	// takes 48 bytes, not 64: a tree holds one per entry, and MaxEntries
	// keeps an index well below 2^31 entries.)
	Layer, Index int32
	// Nlink is the number of names for a file, or 2 plus the number of
	// subdirectories for a directory.
	Nlink uint32
	// Ino numbers inodes 1 (the root) upward in sorted walk order, so it
	// is stable for a given set of layers.
	Ino uint64
	// Bad, when not "", is why the file must not be served (for example a
	// hard link whose target is missing): the view answers EIO.
	Bad string
}

// Root returns the root directory.
func (t *Tree) Root() *Node { return t.root }

// Lookup finds a normalized path ("." is the root).
func (t *Tree) Lookup(name string) (*Node, bool) {
	n := t.root
	if name == "." || name == "" {
		return n, true
	}
	for _, el := range strings.Split(name, "/") {
		if n = n.child(el); n == nil {
			return nil, false
		}
	}
	return n, true
}

// child returns the entry called name: from the map while the tree is
// built, by binary search once it is finished.
func (n *Node) child(name string) *Node {
	d := n.dir
	if d == nil {
		return nil
	}
	if d.children != nil {
		return d.children[name]
	}
	i, ok := sort.Find(len(d.sorted), func(i int) int { return strings.Compare(name, d.sorted[i].name) })
	if !ok {
		return nil
	}
	return d.sorted[i]
}

// Name is the node's name in its directory ("." for the root).
func (n *Node) Name() string { return n.name }

// Inode is the file the name points at.
func (n *Node) Inode() *Inode { return n.inode }

// Child returns the directory entry called name, if any.
func (n *Node) Child(name string) (*Node, bool) {
	c := n.child(name)
	return c, c != nil
}

// Children returns a directory's entries sorted by name. The slice is
// shared: do not modify it.
func (n *Node) Children() []*Node {
	if n.dir == nil {
		return nil
	}
	return n.dir.sorted
}

// Walk calls fn for every node in sorted depth-first order with its path,
// the root first as ".".
func (t *Tree) Walk(fn func(path string, n *Node)) {
	var walk func(p string, n *Node)
	walk = func(p string, n *Node) {
		fn(p, n)
		for _, c := range n.Children() {
			cp := c.name
			if p != "." {
				cp = p + "/" + c.name
			}
			walk(cp, c)
		}
	}
	walk(".", t.root)
}

// finish sorts children, numbers inodes and counts links, and drops the
// maps that indexed children while the tree was built.
func (t *Tree) finish() {
	// Every inode is new to this tree: Ino 0 means not numbered yet, and a
	// file's Nlink counts the names found so far.
	var ino uint64
	var walk func(n *Node)
	walk = func(n *Node) {
		if n.inode.Ino == 0 {
			ino++
			n.inode.Ino = ino
		}
		if n.inode.Entry.Type != TypeDir {
			n.inode.Nlink++
			return
		}
		d := n.dir
		d.sorted = make([]*Node, 0, len(d.children))
		subdirs := 0
		for _, c := range d.children {
			d.sorted = append(d.sorted, c)
			if c.inode.Entry.Type == TypeDir {
				subdirs++
			}
		}
		sort.Slice(d.sorted, func(i, j int) bool { return d.sorted[i].name < d.sorted[j].name })
		d.children = nil
		n.inode.Nlink = 2 + uint32(subdirs)
		for _, c := range d.sorted {
			walk(c)
		}
	}
	walk(t.root)
}
