package sociinterop

import (
	"bytes"
	"maps"
	"strings"
	"testing"

	"github.com/imgfs/imgfs/internal/sociinterop/socitest"
)

// TestReadBackZtoc reads every file of the fixture through SOCI-built
// zTOCs with SOCI's own reader (ztoc.Unmarshal and ExtractFile), the
// helper that later checks the zTOCs imgfs publishes; and it refuses a
// blob with one byte changed, by the span digest SOCI checks.
func TestReadBackZtoc(t *testing.T) {
	raw := socitest.FixtureTar(1)
	want := readTar(t, raw).files()
	for _, tc := range ztocCases(raw) {
		t.Run(tc.name, func(t *testing.T) {
			z, err := socitest.BuildZtoc(tc.blob, gzipLayer(tc.blob), socitest.Options{SpanSize: tc.spanSize})
			if err != nil {
				t.Fatal(err)
			}
			got := socitest.ReadBackZtoc(t, z.Bytes, tc.blob)
			if !maps.EqualFunc(got, want, bytes.Equal) {
				for name, w := range want {
					if g, ok := got[name]; !ok || !bytes.Equal(g, w) {
						t.Errorf("%s: SOCI read %d bytes (listed: %t), the tar has %d", name, len(g), ok, len(w))
					}
				}
				t.Fatalf("SOCI read %d files, the tar has %d", len(got), len(want))
			}

			bad := bytes.Clone(tc.blob)
			bad[len(bad)/2] ^= 0x40
			if _, err := socitest.ReadBack(z.Bytes, bad); err == nil || !strings.Contains(err.Error(), "sha256") {
				t.Errorf("ReadBack of a blob with a byte changed: %v, want a span digest mismatch", err)
			}
			if _, err := socitest.ReadBack(z.Bytes, tc.blob[:len(tc.blob)-1]); err == nil {
				t.Error("ReadBack of a blob one byte short: no error")
			}
		})
	}
}
