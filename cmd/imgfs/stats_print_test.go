package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/imgfs/imgfs/internal/imagemount"
)

func TestStatsPrintsWhereEachLayersIndexCameFrom(t *testing.T) {
	soci, refused, pending := digest.FromString("soci"), digest.FromString("refused"), digest.FromString("pending")
	var st mountStats
	st.Cache.Views = []imagemount.LayerStats{
		{Layer: soci, Format: "gzip", State: "ready", Source: "soci-v2", IndexBytes: 2 << 20},
		{Layer: refused, Format: "gzip", State: "refused", Source: "soci-v1", IndexBytes: 4096,
			Error: "the SOCI v1 index sha256:abc disagrees with the verified layer: entry 3: name is \"a\""},
		{Layer: pending, State: "indexing"},
	}
	var out bytes.Buffer
	printMountStats(&out, "/mnt/x", st)
	text := out.String()
	for _, want := range []string{
		"LAYER", "INDEX SIZE",
		shortDigest(soci), "soci-v2", "2.0 MiB",
		shortDigest(refused) + " refused: the SOCI v1 index sha256:abc disagrees",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("imgfs stats lacks %q:\n%s", want, text)
		}
	}
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, shortDigest(pending)) && !strings.Contains(l, "indexing") {
			t.Errorf("a layer still indexing: %q", l)
		}
	}

	out.Reset()
	st.Cache.Views = nil
	printMountStats(&out, "/mnt/x", st)
	if strings.Contains(out.String(), "LAYER") {
		t.Errorf("a mount whose views nobody looked at prints a layer table:\n%s", out.String())
	}
}
