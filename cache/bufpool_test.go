package cache

import "testing"

func TestBufPoolReusesItsSlots(t *testing.T) {
	p := &bufPool{slotSize: 64 << 10, slots: 2}
	a, b := p.get(64<<10), p.get(1000)
	if p.mem == nil {
		t.Skip("no anonymous mapping here: every buffer comes from the heap")
	}
	if !p.owns(*a) || !p.owns(*b) || len(*b) != 1000 || cap(*b) != 64<<10 {
		t.Fatalf("slots: len %d cap %d, owned %v %v", len(*b), cap(*b), p.owns(*a), p.owns(*b))
	}
	if !directAligned(*a, 0) || !raceEnabled && uintptrOf(p.mem)%hugePage != 0 {
		t.Error("slots must be aligned for O_DIRECT, and the mapping for huge pages")
	}
	heap := p.get(64 << 10) // both slots are out
	big := p.get(128 << 10) // larger than a slot
	if p.owns(*heap) || p.owns(*big) || len(*big) != 128<<10 {
		t.Error("beyond the slots, buffers should come from the heap")
	}
	p.Put(heap)
	p.Put(big)
	p.Put(b)
	p.Put(b) // a second put of the same slot must not block or be handed out twice
	c := p.get(64 << 10)
	if uintptrOf(*c) != uintptrOf(*b) || len(*c) != 64<<10 {
		t.Errorf("a returned slot should be handed out again, whole: len %d", len(*c))
	}
	if d := p.get(10); p.owns(*d) {
		t.Error("the free list handed out the same slot twice")
	}
}

func (p *bufPool) owns(b []byte) bool {
	_, ok := p.slotOf(b)
	return ok
}
