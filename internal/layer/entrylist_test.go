package layer

import "testing"

// TestEntryListKeepsOrder: entries collected across chunk boundaries come
// back in order, in one slice of the exact length.
func TestEntryListKeepsOrder(t *testing.T) {
	for _, n := range []int{0, 1, entryChunk - 1, entryChunk, entryChunk + 1, 3*entryChunk + 5} {
		var l entryList
		for i := range n {
			l.add(Entry{Offset: int64(i)})
			if l.len() != i+1 || l.last().Offset != int64(i) {
				t.Fatalf("n=%d: after %d adds len %d, last %d", n, i+1, l.len(), l.last().Offset)
			}
		}
		got := l.slice()
		if len(got) != n {
			t.Fatalf("n=%d: %d entries", n, len(got))
		}
		if n > entryChunk && cap(got) != n {
			t.Errorf("n=%d: cap %d, want the exact length", n, cap(got))
		}
		for i := range got {
			if got[i].Offset != int64(i) {
				t.Fatalf("n=%d: entry %d has offset %d", n, i, got[i].Offset)
			}
		}
	}
}
