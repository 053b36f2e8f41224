package fusefs

import (
	"reflect"
	"testing"
)

func TestAddRangeMergesOutOfOrderReads(t *testing.T) {
	var rs [][2]int64
	for _, r := range [][2]int64{{4, 6}, {0, 2}, {8, 10}, {2, 3}, {6, 8}, {3, 4}} {
		rs = addRange(rs, r[0], r[1])
	}
	if want := [][2]int64{{0, 10}}; !reflect.DeepEqual(rs, want) {
		t.Errorf("got %v, want %v", rs, want)
	}
	rs = addRange([][2]int64{{0, 2}, {5, 6}}, 3, 4)
	if want := [][2]int64{{0, 2}, {3, 4}, {5, 6}}; !reflect.DeepEqual(rs, want) {
		t.Errorf("got %v, want %v", rs, want)
	}
}
