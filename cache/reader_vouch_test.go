package cache

import (
	"testing"

	"github.com/imgfs/imgfs/internal/byterange"
)

func TestServedRecord(t *testing.T) {
	type step struct {
		epoch    uint64
		r        byterange.Range
		verified bool
	}
	tests := []struct {
		name    string
		steps   []step
		vouched bool
	}{
		{"nothing served", nil, true},
		{"unverified bytes, same epoch", []step{{0, byterange.Range{Start: 0, End: 10}, false}, {0, byterange.Range{Start: 10, End: 20}, false}}, true},
		{"unverified bytes, then a new epoch", []step{{0, byterange.Range{Start: 0, End: 10}, false}, {1, byterange.Range{Start: 10, End: 20}, true}}, false},
		{"read again in the new epoch", []step{{0, byterange.Range{Start: 0, End: 10}, false}, {1, byterange.Range{Start: 0, End: 5}, false}, {1, byterange.Range{Start: 5, End: 20}, true}}, true},
		{"read again only in part", []step{{0, byterange.Range{Start: 0, End: 10}, false}, {1, byterange.Range{Start: 0, End: 5}, true}, {1, byterange.Range{Start: 9, End: 20}, true}}, false},
		{"verified bytes are never set aside", []step{{0, byterange.Range{Start: 0, End: 10}, true}, {1, byterange.Range{Start: 10, End: 20}, true}}, true},
		{"two epochs later, read again in between", []step{{0, byterange.Range{Start: 0, End: 10}, false}, {1, byterange.Range{Start: 0, End: 10}, false}, {2, byterange.Range{Start: 10, End: 20}, true}}, false},
		{"two epochs later, read again in the last", []step{{0, byterange.Range{Start: 0, End: 10}, false}, {1, byterange.Range{Start: 0, End: 10}, false}, {2, byterange.Range{Start: 0, End: 20}, true}}, true},
	}
	for _, tt := range tests {
		var s servedRecord
		for _, st := range tt.steps {
			s.served(st.epoch, st.r, st.verified)
		}
		if got := s.vouched(); got != tt.vouched {
			t.Errorf("%s: vouched = %v, want %v (stale %s, since %s)", tt.name, got, tt.vouched, s.stale.String(), s.since.String())
		}
	}
}
