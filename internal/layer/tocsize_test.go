package layer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/containerd/stargz-snapshotter/estargz"

	"github.com/imgfs/imgfs/internal/oci"
)

func TestTOCSizeReadsTheFooterOnly(t *testing.T) {
	raw, _ := testLayer(t, 1)
	for _, format := range []oci.LayerFormat{oci.FormatEStargz, oci.FormatZstdChunked} {
		t.Run(format.String(), func(t *testing.T) {
			blob, _ := buildTOCLayer(t, format, raw)
			src := &recordingSource{b: blob}
			got, err := TOCSize(context.Background(), src, int64(len(blob)), format)
			if err != nil {
				t.Fatal(err)
			}
			// What estargz.Open reads as the TOC: from its offset to the
			// footer.
			tocOffset, footerSize, err := estargz.OpenFooter(io.NewSectionReader(bytes.NewReader(blob), 0, int64(len(blob))))
			if format == oci.FormatZstdChunked {
				var d zstdChunked
				_, tocOffset, _, err = d.ParseFooter(blob[int64(len(blob))-d.FooterSize():])
				footerSize = d.FooterSize()
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := int64(len(blob)) - footerSize - tocOffset; format == oci.FormatEStargz && got != want || got <= 0 || got > want {
				t.Errorf("TOC size %d, the footer puts it at %d..%d of %d", got, tocOffset, int64(len(blob))-footerSize, len(blob))
			}
			if len(src.reads) != 1 || src.reads[0][0]+src.reads[0][1] != int64(len(blob)) || src.reads[0][1] > 64 {
				t.Errorf("reads %v, want one of the footer at the end", src.reads)
			}
		})
	}
	bad := bytes.Repeat([]byte{0xff}, 100)
	if _, err := TOCSize(context.Background(), &recordingSource{b: bad}, int64(len(bad)), oci.FormatEStargz); !errors.Is(err, ErrBroken) {
		t.Errorf("TOCSize of a blob with no footer = %v, want ErrBroken", err)
	}
	if _, err := TOCSize(context.Background(), &recordingSource{b: bad}, 10, oci.FormatZstdChunked); !errors.Is(err, ErrBroken) {
		t.Errorf("TOCSize of a blob shorter than a footer = %v, want ErrBroken", err)
	}
}
