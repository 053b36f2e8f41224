// Package byterange is sets of byte ranges: which bytes of a blob or a
// file are present. It is a leaf: pure values, no I/O.
package byterange

import (
	"fmt"
	"sort"
	"strings"
)

// Range is the half-open byte range [Start, End).
type Range struct {
	Start, End int64
}

// Len returns the number of bytes in r.
func (r Range) Len() int64 { return r.End - r.Start }

func (r Range) String() string { return fmt.Sprintf("[%d,%d)", r.Start, r.End) }

// Set is a set of bytes kept as sorted, disjoint, non-adjacent ranges.
// Partial blobs use it to record which bytes are present. The zero value is
// empty and ready to use; it is not safe for concurrent use.
type Set struct {
	ranges []Range
}

// Ranges returns the set's ranges in order. The caller must not modify them.
func (s *Set) Ranges() []Range { return s.ranges }

// Size returns the number of bytes in the set.
func (s *Set) Size() int64 {
	var n int64
	for _, r := range s.ranges {
		n += r.Len()
	}
	return n
}

// search returns the index of the first range that ends at or after off.
func (s *Set) search(off int64) int {
	return sort.Search(len(s.ranges), func(i int) bool { return s.ranges[i].End >= off })
}

// Add puts r into the set, merging it with ranges it overlaps or touches.
func (s *Set) Add(r Range) {
	if r.Len() <= 0 {
		return
	}
	i := s.search(r.Start)
	j := i
	for j < len(s.ranges) && s.ranges[j].Start <= r.End {
		r.Start = min(r.Start, s.ranges[j].Start)
		r.End = max(r.End, s.ranges[j].End)
		j++
	}
	if i == j {
		s.ranges = append(s.ranges, Range{})
		copy(s.ranges[i+1:], s.ranges[i:])
		s.ranges[i] = r
		return
	}
	s.ranges[i] = r
	s.ranges = append(s.ranges[:i+1], s.ranges[j:]...)
}

// Remove takes the bytes of r out of the set, splitting a range that
// holds them in the middle.
func (s *Set) Remove(r Range) {
	if r.Len() <= 0 {
		return
	}
	i := s.search(r.Start + 1)
	j := i
	var keep []Range
	for j < len(s.ranges) && s.ranges[j].Start < r.End {
		if s.ranges[j].Start < r.Start {
			keep = append(keep, Range{s.ranges[j].Start, r.Start})
		}
		if s.ranges[j].End > r.End {
			keep = append(keep, Range{r.End, s.ranges[j].End})
		}
		j++
	}
	if i == j {
		return
	}
	s.ranges = append(s.ranges[:i], append(keep, s.ranges[j:]...)...)
}

// Contains reports whether every byte of r is in the set.
func (s *Set) Contains(r Range) bool {
	if r.Len() <= 0 {
		return true
	}
	i := s.search(r.Start + 1)
	return i < len(s.ranges) && s.ranges[i].Start <= r.Start && r.End <= s.ranges[i].End
}

// Missing returns the parts of r that are not in the set, in order.
func (s *Set) Missing(r Range) []Range {
	var gaps []Range
	s.eachGap(r, func(gap Range) { gaps = append(gaps, gap) })
	return gaps
}

// MissingSize returns how many bytes of r are not in the set, the total
// length of Missing(r), without building the list.
func (s *Set) MissingSize(r Range) int64 {
	var n int64
	s.eachGap(r, func(gap Range) { n += gap.Len() })
	return n
}

// eachGap calls fn with each part of r that is not in the set, in order.
func (s *Set) eachGap(r Range, fn func(Range)) {
	cur := r.Start
	for i := s.search(r.Start + 1); i < len(s.ranges) && s.ranges[i].Start < r.End && cur < r.End; i++ {
		if s.ranges[i].Start > cur {
			fn(Range{cur, s.ranges[i].Start})
		}
		cur = max(cur, s.ranges[i].End)
	}
	if cur < r.End {
		fn(Range{cur, r.End})
	}
}

// FirstGap returns the first part of r that is not in the set, or an empty
// range if r is covered. It costs a binary search, however large r is.
func (s *Set) FirstGap(r Range) Range {
	if r.Len() <= 0 {
		return Range{}
	}
	cur := r.Start
	if i := s.search(r.Start + 1); i < len(s.ranges) && s.ranges[i].Start <= cur {
		cur = s.ranges[i].End
		i++
		if cur >= r.End {
			return Range{}
		}
		if i < len(s.ranges) {
			return Range{cur, min(r.End, s.ranges[i].Start)}
		}
		return Range{cur, r.End}
	} else if i < len(s.ranges) {
		return Range{cur, min(r.End, s.ranges[i].Start)}
	}
	return Range{cur, r.End}
}

// PrefixEnd returns where the run of present bytes starting at 0 ends.
func (s *Set) PrefixEnd() int64 {
	if len(s.ranges) == 0 || s.ranges[0].Start != 0 {
		return 0
	}
	return s.ranges[0].End
}

func (s *Set) String() string {
	parts := make([]string, len(s.ranges))
	for i, r := range s.ranges {
		parts[i] = r.String()
	}
	return strings.Join(parts, " ")
}
