package layer

import (
	"fmt"
	"maps"
)

// CompareEntries returns nil when got lists the same entries as want, in
// the same order, with the same metadata and the same place in the tar
// stream, and otherwise an error naming the first difference. It is how an
// index taken on trust is checked against one derived from the layer's
// verified bytes: any field a read or a listing would serve differently
// counts.
func CompareEntries(got, want []Entry) error {
	for i := range min(len(got), len(want)) {
		if err := compareEntry(&got[i], &want[i]); err != nil {
			return fmt.Errorf("entry %d (%q): %w", i, want[i].Name, err)
		}
	}
	if len(got) != len(want) {
		return fmt.Errorf("%d entries, the layer has %d", len(got), len(want))
	}
	return nil
}

func compareEntry(g, w *Entry) error {
	differ := func(field string, got, want any) error {
		return fmt.Errorf("%s is %v, the layer says %v", field, got, want)
	}
	switch {
	case g.Name != w.Name:
		return differ("name", fmt.Sprintf("%q", g.Name), fmt.Sprintf("%q", w.Name))
	case g.Type != w.Type:
		return differ("type", g.Type, w.Type)
	case g.Size != w.Size:
		return differ("size", g.Size, w.Size)
	case g.Type == TypeRegular && g.DataOffset != w.DataOffset:
		return differ("data offset", g.DataOffset, w.DataOffset)
	case g.Sparse != w.Sparse:
		return differ("sparse", g.Sparse, w.Sparse)
	case g.Mode != w.Mode:
		return differ("mode", fmt.Sprintf("%o", g.Mode), fmt.Sprintf("%o", w.Mode))
	case g.UID != w.UID || g.GID != w.GID:
		return differ("owner", fmt.Sprintf("%d:%d", g.UID, g.GID), fmt.Sprintf("%d:%d", w.UID, w.GID))
	case g.Linkname != w.Linkname:
		return differ("link target", fmt.Sprintf("%q", g.Linkname), fmt.Sprintf("%q", w.Linkname))
	case g.Devmajor != w.Devmajor || g.Devminor != w.Devminor:
		return differ("device", fmt.Sprintf("%d,%d", g.Devmajor, g.Devminor), fmt.Sprintf("%d,%d", w.Devmajor, w.Devminor))
	case g.MTime != w.MTime || g.MTimeNsec != w.MTimeNsec:
		return differ("modification time", g.ModTime(), w.ModTime())
	case !maps.Equal(g.Xattrs, w.Xattrs) && (len(g.Xattrs) > 0 || len(w.Xattrs) > 0):
		return differ("extended attributes", g.Xattrs, w.Xattrs)
	case g.Bad != w.Bad:
		return differ("refusal", fmt.Sprintf("%q", g.Bad), fmt.Sprintf("%q", w.Bad))
	}
	return nil
}
