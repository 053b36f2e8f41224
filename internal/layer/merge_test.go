package layer

import (
	"fmt"
	"sort"
	"strings"
	"testing"
)

// listing renders a tree as "path type nlink" lines, plus "!bad" marks.
func listing(tr *Tree) string {
	var out []string
	tr.Walk(func(p string, n *Node) {
		in := n.Inode()
		s := fmt.Sprintf("%s %s", p, in.Entry.Type)
		if in.Entry.Type == TypeRegular {
			s += fmt.Sprintf(" L%d n%d", in.Layer, in.Nlink)
		}
		if in.Bad != "" {
			s += " !bad"
		}
		out = append(out, s)
	})
	return strings.Join(out, "\n")
}

func TestMerge(t *testing.T) {
	for _, tc := range []struct {
		name   string
		layers [][]file
		want   []string
		bad    int
	}{
		{
			name:   "whiteout of a file",
			layers: [][]file{{reg("a", "1"), reg("b", "2")}, {reg(".wh.a", "")}},
			want:   []string{". dir", "b regular L0 n1"},
		},
		{
			name:   "whiteout of a directory removes its subtree",
			layers: [][]file{{dir("d/"), reg("d/x", "1"), reg("d/e/y", "2"), reg("keep", "")}, {reg(".wh.d", "")}},
			want:   []string{". dir", "keep regular L0 n1"},
		},
		{
			name:   "whiteout in the same layer as the file does not hide it",
			layers: [][]file{{reg("a", "1")}, {reg("a", "2"), reg(".wh.a", "")}},
			want:   []string{". dir", "a regular L1 n1"},
		},
		{
			name:   "whiteout before the file in the same layer",
			layers: [][]file{{reg("a", "1")}, {reg(".wh.a", ""), reg("a", "2")}},
			want:   []string{". dir", "a regular L1 n1"},
		},
		{
			name:   "opaque dir re-populated in the same layer",
			layers: [][]file{{dir("d/"), reg("d/x", "1"), reg("d/y", "1")}, {dir("d/"), reg("d/y", "2"), reg("d/.wh..wh..opq", ""), reg("d/z", "3")}},
			want:   []string{". dir", "d dir", "d/y regular L1 n1", "d/z regular L1 n1"},
		},
		{
			name:   "opaque marker with implicit parent",
			layers: [][]file{{reg("d/x", "1")}, {reg("d/.wh..wh..opq", "")}},
			want:   []string{". dir", "d dir"},
		},
		{
			name:   "whiteout of something absent, aufs metadata ignored",
			layers: [][]file{{reg("a", "1")}, {reg(".wh.nothere", ""), reg(".wh..wh.plnk", ""), reg("x/.wh.y", "")}},
			want:   []string{". dir", "a regular L0 n1", "x dir"},
		},
		{
			name:   "duplicates: last wins, dir over dir keeps children",
			layers: [][]file{{reg("a", "1"), reg("a", "2"), dir("d/"), reg("d/x", ""), dir("d/")}},
			want:   []string{". dir", "a regular L0 n1", "d dir", "d/x regular L0 n1"},
		},
		{
			name:   "file replaces a directory, directory replaces a file",
			layers: [][]file{{dir("d/"), reg("d/x", ""), reg("f", "")}, {reg("d", "now a file"), dir("f/")}},
			want:   []string{". dir", "d regular L1 n1", "f dir"},
		},
		{
			name:   "hard links share an inode and count",
			layers: [][]file{{reg("a", "1"), hardlink("b", "a"), hardlink("c", "./a")}, {hardlink("d", "b")}},
			want:   []string{". dir", "a regular L0 n4", "b regular L0 n4", "c regular L0 n4", "d regular L0 n4"},
		},
		{
			name:   "whiteout of one name of a hard link drops the count",
			layers: [][]file{{reg("a", "1"), hardlink("b", "a")}, {reg(".wh.a", "")}},
			want:   []string{". dir", "b regular L0 n1"},
		},
		{
			name:   "hard link to a missing target is a bad node",
			layers: [][]file{{reg("a", "1"), hardlink("b", "nope"), hardlink("c", "/")}},
			want:   []string{". dir", "a regular L0 n1", "b regular L0 n1 !bad", "c regular L0 n1 !bad"},
			bad:    2,
		},
		{
			name:   "escaping names are left out",
			layers: [][]file{{reg("../../etc/passwd", "x"), reg("/etc/hosts", "y")}},
			want:   []string{". dir", "etc dir", "etc/hosts regular L0 n1"},
			bad:    1,
		},
		{
			name:   "a parent that is a symlink is not followed",
			layers: [][]file{{symlink("l", "/etc"), reg("l/passwd", "x")}},
			want:   []string{". dir", "l symlink"},
			bad:    1,
		},
		{
			name:   "directory link counts",
			layers: [][]file{{dir("a/"), dir("a/b/"), dir("a/c/"), reg("a/f", "")}},
			want:   []string{". dir", "a dir", "a/b dir", "a/c dir", "a/f regular L0 n1"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var idxs []*Index
			for _, l := range tc.layers {
				idxs = append(idxs, mustIndex(t, l...))
			}
			tr := Merge(idxs)
			if got := listing(tr); got != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", got, strings.Join(tc.want, "\n"))
			}
			if len(tr.Bad) != tc.bad {
				t.Errorf("bad %+v, want %d", tr.Bad, tc.bad)
			}
		})
	}
}

func TestDirNlinkAndIno(t *testing.T) {
	tr := Merge([]*Index{mustIndex(t, dir("a/"), dir("a/b/"), dir("a/c/"), reg("a/f", ""), hardlink("a/g", "a/f"))})
	a, _ := tr.Lookup("a")
	if a.Inode().Nlink != 4 {
		t.Errorf("a nlink %d, want 4", a.Inode().Nlink)
	}
	f, _ := tr.Lookup("a/f")
	g, _ := tr.Lookup("a/g")
	if f.Inode() != g.Inode() || f.Inode().Ino == 0 {
		t.Error("hard links do not share an inode")
	}
	if tr.Root().Inode().Ino != 1 {
		t.Error("root is not inode 1")
	}
	var names []string
	for _, c := range a.Children() {
		names = append(names, c.Name())
	}
	if !sort.StringsAreSorted(names) || len(names) != 4 {
		t.Errorf("children %v", names)
	}
}

func TestLayerTreeShowsWhiteouts(t *testing.T) {
	idx := mustIndex(t, reg(".wh.a", ""), reg("d/.wh..wh..opq", ""), reg("d/x", "1"))
	got := listing(LayerTree(idx, 3))
	want := ". dir\n.wh.a regular L3 n1\nd dir\nd/.wh..wh..opq regular L3 n1\nd/x regular L3 n1"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
