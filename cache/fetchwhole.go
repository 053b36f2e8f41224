package cache

import (
	"context"
	"fmt"
	"io"

	"github.com/imgfs/imgfs/cache/internal/blobfsm"
	"github.com/imgfs/imgfs/internal/byterange"
)

// wholeClaimAhead is how many chunks past the one arriving a whole-blob
// stream claims, so that readers just ahead of it wait for the stream
// instead of sending range requests of their own. It bounds what the
// claim costs, whatever size the descriptor says.
const wholeClaimAhead = 64

// landWhole lands what the source sent when it answered run's range
// request with the whole blob; in is that body from byte 0. Chunks the run
// owns, and chunks the blob lacks that no other run is fetching, are
// written and landed as they arrive; the rest are dropped. The stream is
// read while it still has chunks to land, so a pull-through mirror's first
// answer fills the cache rather than being asked for again range by range.
//
// Runs sent before the first whole answer came back get whole answers
// too. Such a run hands the stream already reading (the lead) the chunks
// ahead of it, and reads its own answer only as far as the chunks the
// lead has passed, claiming nothing more.
func (b *Blob) landWhole(ctx context.Context, run blobfsm.Run, df *dataFile, in io.Reader) error {
	b.mu.Lock()
	leading := b.lead.ID == 0 || b.m.RunLeft(b.lead.ID) == 0
	if leading {
		b.lead, b.leadAt = run, -1
	} else if b.m.HandOver(run.Gen, run.ID, b.lead.ID, b.leadAt) {
		b.mu.Unlock()
		return nil
	}
	b.mu.Unlock()
	if leading {
		defer func() {
			b.mu.Lock()
			if b.lead.ID == run.ID {
				b.lead = blobfsm.Run{}
			}
			b.mu.Unlock()
		}()
	}

	s := b.store
	cs := s.opts.ChunkSize
	last := (b.desc.Size - 1) / cs
	for c := int64(0); c <= last; c++ {
		b.mu.Lock()
		var mine bool
		if leading {
			b.leadAt = c
			mine = b.m.Claim(run.Gen, run.ID, c)
			for ahead := c + 1; ahead <= min(c+wholeClaimAhead, last); ahead++ {
				b.m.Claim(run.Gen, run.ID, ahead)
			}
		} else {
			mine = b.m.Owns(run.Gen, run.ID, c)
		}
		left := b.m.RunLeft(run.ID)
		b.mu.Unlock()
		if left == 0 {
			return nil // everything from here on is present or another run's
		}
		cr := byterange.Range{Start: c * cs, End: min((c+1)*cs, b.desc.Size)}
		bp, err := b.readChunk(in, cr)
		if err != nil {
			return causeOr(ctx, err)
		}
		if !mine {
			chunkPool.Put(bp)
			continue
		}
		if err := df.writeChunk(*bp, cr, run.Writeback); err != nil {
			chunkPool.Put(bp)
			return err
		}
		b.land(run, c, cr, bp)
	}
	b.mu.Lock()
	left := b.m.RunLeft(run.ID)
	b.mu.Unlock()
	if left > 0 {
		// Cannot happen while claims and hand-overs only take chunks
		// ahead of the stream; if it does, the chunks are freed for
		// another fetch rather than left waiting.
		return fmt.Errorf("whole-blob answer ended with %d of its chunks not landed", left)
	}
	return nil
}
