package byterange

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

func TestRangeSetAdd(t *testing.T) {
	tests := []struct {
		name string
		add  []Range
		want []Range
	}{
		{"empty range ignored", []Range{{5, 5}}, nil},
		{"disjoint kept apart", []Range{{10, 20}, {0, 5}, {30, 40}}, []Range{{0, 5}, {10, 20}, {30, 40}}},
		{"adjacent merge", []Range{{0, 5}, {5, 10}}, []Range{{0, 10}}},
		{"overlap merge", []Range{{0, 6}, {4, 10}}, []Range{{0, 10}}},
		{"bridge several", []Range{{0, 2}, {4, 6}, {8, 10}, {1, 9}}, []Range{{0, 10}}},
		{"contained", []Range{{0, 10}, {2, 3}}, []Range{{0, 10}}},
		{"insert middle", []Range{{0, 2}, {8, 10}, {4, 6}}, []Range{{0, 2}, {4, 6}, {8, 10}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Set
			for _, r := range tt.add {
				s.Add(r)
			}
			if !reflect.DeepEqual(s.Ranges(), tt.want) {
				t.Errorf("got %v, want %v", s.Ranges(), tt.want)
			}
		})
	}
}

func TestRangeSetQueries(t *testing.T) {
	var s Set
	s.Add(Range{0, 10})
	s.Add(Range{20, 30})
	tests := []struct {
		q        Range
		contains bool
		missing  []Range
	}{
		{Range{0, 10}, true, nil},
		{Range{2, 8}, true, nil},
		{Range{5, 15}, false, []Range{{10, 15}}},
		{Range{10, 20}, false, []Range{{10, 20}}},
		{Range{0, 40}, false, []Range{{10, 20}, {30, 40}}},
		{Range{25, 30}, true, nil},
		{Range{30, 31}, false, []Range{{30, 31}}},
		{Range{9, 21}, false, []Range{{10, 20}}},
	}
	for _, tt := range tests {
		if got := s.Contains(tt.q); got != tt.contains {
			t.Errorf("Contains(%v) = %v", tt.q, got)
		}
		if got := s.Missing(tt.q); !reflect.DeepEqual(got, tt.missing) {
			t.Errorf("Missing(%v) = %v, want %v", tt.q, got, tt.missing)
		}
	}
	if s.Size() != 20 || s.PrefixEnd() != 10 {
		t.Errorf("Size %d PrefixEnd %d", s.Size(), s.PrefixEnd())
	}
}

// TestRangeSetMatchesBitmap checks the set against a byte bitmap under
// random additions.
func TestRangeSetMatchesBitmap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const size = 200
	for round := 0; round < 200; round++ {
		var s Set
		var bits [size]bool
		for k := 0; k < 10; k++ {
			a := rng.Int64N(size)
			b := a + rng.Int64N(size-a+1)
			s.Add(Range{a, b})
			for i := a; i < b; i++ {
				bits[i] = true
			}
		}
		var n int64
		for i := range bits {
			if bits[i] != s.Contains(Range{int64(i), int64(i) + 1}) {
				t.Fatalf("byte %d: bitmap %v, set %v", i, bits[i], s.String())
			}
			if bits[i] {
				n++
			}
		}
		if s.Size() != n {
			t.Fatalf("Size %d, want %d", s.Size(), n)
		}
		for i := 1; i < len(s.ranges); i++ {
			if s.ranges[i-1].End >= s.ranges[i].Start {
				t.Fatalf("not normalised: %v", s.String())
			}
		}
	}
}

// BenchmarkRangeSetAddSequential models a blob filled chunk by chunk.
func BenchmarkRangeSetAddSequential(b *testing.B) {
	for b.Loop() {
		var s Set
		for c := int64(0); c < 512; c++ {
			s.Add(Range{c << 20, (c + 1) << 20})
		}
	}
}

// BenchmarkRangeSetContainsFragmented models the lookup each read does on
// a blob with many holes.
func BenchmarkRangeSetContainsFragmented(b *testing.B) {
	var s Set
	for c := int64(0); c < 1024; c += 2 {
		s.Add(Range{c << 20, (c + 1) << 20})
	}
	q := Range{511 << 20, 511<<20 + 4096}
	for b.Loop() {
		s.Contains(q)
	}
}

// TestSetMergesOutOfOrderAdds is what a file copy relies on: reads that
// arrive in any order, as parallel readahead sends them, end as one range.
func TestSetMergesOutOfOrderAdds(t *testing.T) {
	var s Set
	for _, r := range []Range{{4, 6}, {0, 2}, {8, 10}, {2, 3}, {6, 8}, {3, 4}} {
		s.Add(r)
	}
	if want := []Range{{0, 10}}; !reflect.DeepEqual(s.Ranges(), want) {
		t.Errorf("got %v, want %v", s.Ranges(), want)
	}
	s = Set{}
	for _, r := range []Range{{0, 2}, {5, 6}, {3, 4}} {
		s.Add(r)
	}
	if want := []Range{{0, 2}, {3, 4}, {5, 6}}; !reflect.DeepEqual(s.Ranges(), want) {
		t.Errorf("got %v, want %v", s.Ranges(), want)
	}
}

func TestRangeSetRemove(t *testing.T) {
	tests := []struct {
		name   string
		remove Range
		want   []Range
	}{
		{"nothing there", Range{20, 30}, []Range{{0, 10}, {40, 50}}},
		{"empty range", Range{5, 5}, []Range{{0, 10}, {40, 50}}},
		{"middle splits", Range{3, 6}, []Range{{0, 3}, {6, 10}, {40, 50}}},
		{"head", Range{0, 4}, []Range{{4, 10}, {40, 50}}},
		{"tail touching the next", Range{8, 40}, []Range{{0, 8}, {40, 50}}},
		{"across two", Range{5, 45}, []Range{{0, 5}, {45, 50}}},
		{"everything", Range{0, 50}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Set
			s.Add(Range{0, 10})
			s.Add(Range{40, 50})
			s.Remove(tt.remove)
			if got := s.Ranges(); len(got) != len(tt.want) || (len(got) > 0 && !reflect.DeepEqual(got, tt.want)) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
