package layertest

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/containerd/stargz-snapshotter/estargz/zstdchunked"
)

// TOCReadBytes opens each of blobs (eStargz, or zstd:chunked when
// zstdChunked is set) with the estargz library, as a mount does, and
// returns the blob bytes a cold mount and a read of name need, each byte
// counted once: in every blob, what the library's reads touch (the footer,
// then the TOC) and its last tail bytes, which a mount reads first; and
// the compressed bytes of name's chunks in the topmost blob holding it,
// which are also returned on their own.
func TOCReadBytes(blobs [][]byte, zstdChunked bool, name string, tail int64) (need, chunks int64, err error) {
	var opts []estargz.OpenOption
	if zstdChunked {
		opts = append(opts, estargz.WithDecompressors(new(zstdchunked.Decompressor)))
	}
	var recs []*touchedReaderAt
	var serving *touchedReaderAt
	var chunkRanges [][2]int64
	for _, blob := range blobs {
		size := int64(len(blob))
		rec := &touchedReaderAt{r: bytes.NewReader(blob)}
		r, err := estargz.Open(io.NewSectionReader(rec, 0, size), opts...)
		if err != nil {
			return 0, 0, err
		}
		rec.ranges = append(rec.ranges, [2]int64{max(size-tail, 0), size})
		recs = append(recs, rec)
		e, ok := r.Lookup(name)
		if !ok {
			continue
		}
		serving, chunkRanges, chunks = rec, nil, 0 // an upper layer's copy hides a lower one's
		for off := int64(0); ; {
			ce, ok := r.ChunkEntryForOffset(name, off)
			if !ok {
				return 0, 0, fmt.Errorf("%s: no chunk at %d", name, off)
			}
			chunkRanges = append(chunkRanges, [2]int64{ce.Offset, ce.NextOffset()})
			chunks += ce.NextOffset() - ce.Offset
			off = ce.ChunkOffset + ce.ChunkSize
			if ce.ChunkSize == 0 || off >= e.Size {
				break
			}
		}
	}
	if serving == nil {
		return 0, 0, fmt.Errorf("no blob holds %s", name)
	}
	serving.ranges = append(serving.ranges, chunkRanges...)
	for _, rec := range recs {
		need += rec.touched()
	}
	return need, chunks, nil
}

// touchedReaderAt records the bytes read through it, counting each once.
type touchedReaderAt struct {
	r      io.ReaderAt
	mu     sync.Mutex
	ranges [][2]int64
}

func (t *touchedReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := t.r.ReadAt(p, off)
	t.mu.Lock()
	t.ranges = append(t.ranges, [2]int64{off, off + int64(n)})
	t.mu.Unlock()
	return n, err
}

func (t *touchedReaderAt) touched() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	sort.Slice(t.ranges, func(i, j int) bool { return t.ranges[i][0] < t.ranges[j][0] })
	var n, reached int64
	for _, r := range t.ranges {
		if from := max(r[0], reached); r[1] > from {
			n += r[1] - from
		}
		reached = max(reached, r[1])
	}
	return n
}
