package ztoc

import "testing"

// TestIdleCursors keeps at most maxIdleCursors decoders, the most recent,
// none holding a span over maxIdleSpan, and hands out only one that can
// serve the read: at or before it, past the checkpoint a new one would
// start at, and not cut off before the read's end.
func TestIdleCursors(t *testing.T) {
	toc := &TOC{Checkpoints: []Checkpoint{{Out: 0}, {Out: 100}, {Out: 200}}}
	cur := func(pos int64, last int, ended bool, held int64) *cursor {
		return &cursor{spans: &spanReader{toc: toc, last: last, ended: ended, held: held}, pos: pos}
	}
	var ic idleCursors
	ic.put(cur(5, 0, false, maxIdleSpan+1))
	if len(ic.idle) != 0 {
		t.Fatal("kept a cursor holding a span over maxIdleSpan")
	}
	for i := range maxIdleCursors + 1 {
		ic.put(cur(int64(i), 0, false, maxIdleSpan))
	}
	if len(ic.idle) != maxIdleCursors || ic.idle[0].pos != 1 {
		t.Fatalf("kept %d, oldest at %d; want %d from 1", len(ic.idle), ic.idle[0].pos, maxIdleCursors)
	}
	ic = idleCursors{}
	cut := cur(50, 0, true, 10)   // cut off after span 0: output to 100
	open := cur(60, 1, false, 10) // may fetch on
	ic.put(cut)
	ic.put(open)
	for _, tc := range []struct {
		at, from, end int64
		want          *cursor
	}{
		{at: 40, from: 0, end: 50, want: nil},   // both past at
		{at: 70, from: 65, end: 80, want: nil},  // both before from
		{at: 55, from: 0, end: 101, want: nil},  // open is past 55, cut stops at 100
		{at: 70, from: 0, end: 300, want: open}, // only open reaches 300
		{at: 55, from: 0, end: 100, want: cut},  // cut reaches 100
	} {
		if got := ic.take(tc.at, tc.from, tc.end); got != tc.want {
			t.Errorf("take(%d, %d, %d) = %v, want %v", tc.at, tc.from, tc.end, got, tc.want)
		}
	}
}
