package layer

import (
	"strings"
	"testing"
)

func TestCompareEntries(t *testing.T) {
	base := func() []Entry {
		return []Entry{
			{Name: ".", Type: TypeDir, Mode: 0o755},
			{Name: "etc/os-release", Type: TypeRegular, Mode: 0o644, Size: 300, Offset: 512, DataOffset: 1024, MTime: 1700000000, MTimeNsec: 5},
			{Name: "bin/sh", Type: TypeSymlink, Linkname: "dash", Xattrs: map[string]string{"user.a": "b"}},
		}
	}
	if err := CompareEntries(base(), base()); err != nil {
		t.Fatalf("same entries: %v", err)
	}
	for _, tc := range []struct {
		name, want string
		edit       func(e []Entry) []Entry
	}{
		{"offset points at another file", "data offset is 4096, the layer says 1024", func(e []Entry) []Entry { e[1].DataOffset = 4096; return e }},
		{"size", "size is 3000", func(e []Entry) []Entry { e[1].Size = 3000; return e }},
		{"name", `name is "etc/shadow"`, func(e []Entry) []Entry { e[1].Name = "etc/shadow"; return e }},
		{"mode", "mode is 4755", func(e []Entry) []Entry { e[1].Mode = 0o4755; return e }},
		{"owner", "owner is 0:42", func(e []Entry) []Entry { e[1].GID = 42; return e }},
		{"link", "link target", func(e []Entry) []Entry { e[2].Linkname = "/etc/passwd"; return e }},
		{"xattrs", "extended attributes", func(e []Entry) []Entry { e[2].Xattrs = map[string]string{"security.capability": "x"}; return e }},
		{"time", "modification time", func(e []Entry) []Entry { e[1].MTime = 1; return e }},
		{"type", "type is regular", func(e []Entry) []Entry { e[2].Type = TypeRegular; return e }},
		{"an entry more", "4 entries, the layer has 3", func(e []Entry) []Entry { return append(e, Entry{Name: "x", Type: TypeDir}) }},
		{"an entry less", "2 entries, the layer has 3", func(e []Entry) []Entry { return e[:2] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CompareEntries(tc.edit(base()), base())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CompareEntries = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	// No xattrs and an empty map are the same.
	a, b := base(), base()
	a[0].Xattrs = map[string]string{}
	if err := CompareEntries(a, b); err != nil {
		t.Fatalf("empty and nil xattrs: %v", err)
	}
}
