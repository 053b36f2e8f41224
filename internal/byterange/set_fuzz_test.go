package byterange

import "testing"

// FuzzSet adds ranges decoded from the input, two bytes each (start,
// length) over a 256-byte space, removing every third one instead, and
// checks the set against a bitmap after every change: Contains, Missing, FirstGap, Size and PrefixEnd, and
// that the ranges stay sorted, disjoint and non-adjacent.
func FuzzSet(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 10, 20, 10, 10, 10})
	f.Add([]byte{250, 255, 0, 1, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		const space = 256 + 256
		var s Set
		var bits [space]bool
		for i := 0; i+1 < len(data) && i < 200; i += 2 {
			r := Range{int64(data[i]), int64(data[i]) + int64(data[i+1])}
			remove := i%6 == 4
			if remove {
				s.Remove(r)
			} else {
				s.Add(r)
			}
			for k := r.Start; k < r.End; k++ {
				bits[k] = !remove
			}
			checkRangeSet(t, &s, bits[:])
		}
	})
}

func checkRangeSet(t *testing.T, s *Set, bits []bool) {
	t.Helper()
	var size, prefix int64
	for prefix < int64(len(bits)) && bits[prefix] {
		prefix++
	}
	for i, b := range bits {
		if b {
			size++
		}
		if got := s.Contains(Range{int64(i), int64(i) + 1}); got != b {
			t.Fatalf("Contains(%d) = %v, bitmap %v; set %s", i, got, b, s.String())
		}
	}
	if s.Size() != size || s.PrefixEnd() != prefix {
		t.Fatalf("Size %d PrefixEnd %d, want %d %d; set %s", s.Size(), s.PrefixEnd(), size, prefix, s.String())
	}
	rs := s.Ranges()
	for i, r := range rs {
		if r.Len() <= 0 || (i > 0 && rs[i-1].End >= r.Start) {
			t.Fatalf("not sorted, disjoint and non-adjacent: %s", s.String())
		}
	}
	// Missing and FirstGap over a few windows.
	for _, w := range []Range{{0, int64(len(bits))}, {3, 77}, {100, 101}, {200, 300}} {
		var want []Range
		for k := w.Start; k < w.End; k++ {
			if bits[k] {
				continue
			}
			if n := len(want); n > 0 && want[n-1].End == k {
				want[n-1].End++
			} else {
				want = append(want, Range{k, k + 1})
			}
		}
		got := s.Missing(w)
		if len(got) != len(want) {
			t.Fatalf("Missing(%v) = %v, want %v", w, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("Missing(%v) = %v, want %v", w, got, want)
			}
		}
		first := Range{}
		if len(want) > 0 {
			first = want[0]
		}
		if g := s.FirstGap(w); g != first {
			t.Fatalf("FirstGap(%v) = %v, want %v", w, g, first)
		}
		if s.Contains(w) != (len(want) == 0) {
			t.Fatalf("Contains(%v) disagrees with Missing", w)
		}
	}
}
