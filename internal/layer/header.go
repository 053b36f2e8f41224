package layer

import "archive/tar"

// EntryFromHeader converts one tar header, as archive/tar's Reader.Next
// returns it, into an Entry as this package's own indexers do: the name
// normalized, the type mapped, a sparse file marked, the extended
// attributes taken, and Bad set when the entry cannot be placed. It is for
// packages that walk a tar themselves because they need the header as well
// (package ztoc writes SOCI's per-entry records, which hold the raw names).
// Offset is -1 and DataOffset 0: where the entry lies is the caller's to
// say.
func EntryFromHeader(h *tar.Header) Entry { return entryFromHeader(h) }
