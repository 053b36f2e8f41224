package fetch

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgfs/imgfs/internal/errdefs"
)

func TestNextLink(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{`</v2/r/referrers/x?last=a>; rel="next"`}, "/v2/r/referrers/x?last=a"},
		{[]string{`</v2/r/referrers/x?last=a>;rel=next`}, "/v2/r/referrers/x?last=a"},
		{[]string{`</prev>; rel="prev", </next>; rel="next"`}, "/next"},
		{[]string{`</prev>; rel="prev"`, `<http://h/next>; title="x"; rel="next"`}, "http://h/next"},
		{[]string{`/no-brackets; rel="next"`}, ""},
		{[]string{`</a>`}, ""},
	}
	for _, tt := range tests {
		if got := nextLink(tt.in); got != tt.want {
			t.Errorf("nextLink(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// pagedRegistry serves n SOCI referrers of refSubject, per to a page, each
// page linking to the next with link(last) as the spec's Link header does.
type pagedRegistry struct {
	t     *testing.T
	n     int
	per   int
	link  func(last int) string
	pages atomic.Int32
}

func (p *pagedRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v2/r/referrers/"+refSubject.Digest.String() {
		p.t.Errorf("asked for %s", r.URL)
		http.NotFound(w, r)
		return
	}
	p.pages.Add(1)
	from, _ := strconv.Atoi(r.URL.Query().Get("last"))
	var entries []ocispec.Descriptor
	for i := from; i < p.n && i < from+p.per; i++ {
		d := refSOCI
		d.Digest = digest.FromString(fmt.Sprint("referrer ", i))
		entries = append(entries, d)
	}
	if to := from + p.per; to < p.n || p.n < 0 {
		w.Header().Set("Link", fmt.Sprintf(`<%s>; rel="next"`, p.link(to)))
	}
	w.Header().Set("Content-Type", ocispec.MediaTypeImageIndex)
	w.Write(referrersIndex(p.t, entries...))
}

func TestReferrersPages(t *testing.T) {
	here := func(last int) string {
		return fmt.Sprintf("/v2/r/referrers/%s?artifactType=application%%2Fvnd.amazon.soci.index.v1%%2Bjson&last=%d", refSubject.Digest, last)
	}
	t.Run("all pages", func(t *testing.T) {
		reg := &pagedRegistry{t: t, n: 5, per: 2, link: here}
		remote, _ := newTestRemote(t, reg, RemoteOptions{})
		got, err := remote.Referrers(callContext(t), refSubject, refSOCI.ArtifactType)
		if err != nil || len(got) != 5 || reg.pages.Load() != 3 {
			t.Fatalf("Referrers = %d referrers, %v, in %d pages; want 5 in 3", len(got), err, reg.pages.Load())
		}
		for i, d := range got {
			if d.Digest != digest.FromString(fmt.Sprint("referrer ", i)) {
				t.Errorf("referrer %d is %s", i, d.Digest)
			}
		}
	})
	hostile := []struct {
		name    string
		n, per  int
		link    func(last int) string
		wantIs  error
		wantMsg string
	}{
		{"over the count across pages", MaxReferrers + 1, 600, here, errdefs.ErrTooLarge, "over 1024 referrers"},
		{"endless empty pages", -1, 0, here, errdefs.ErrTooLarge, "more than 64 pages"},
		{"another host", 5, 2, func(int) string { return "http://attacker.example/v2/r/referrers/x?last=2" },
			ErrUnsupported, "leaves the referrers list"},
		{"another path", 5, 2, func(int) string { return "/v2/other/referrers/x?last=2" },
			ErrUnsupported, "leaves the referrers list"},
		{"no page", 5, 2, func(int) string { return "/v2/r/referrers/" + refSubject.Digest.String() },
			ErrUnsupported, "names no page"},
	}
	for _, tt := range hostile {
		t.Run(tt.name, func(t *testing.T) {
			reg := &pagedRegistry{t: t, n: tt.n, per: tt.per, link: tt.link}
			remote, _ := newTestRemote(t, reg, RemoteOptions{})
			got, err := remote.Referrers(callContext(t), refSubject, refSOCI.ArtifactType)
			if err == nil {
				t.Fatalf("Referrers = %d referrers, want an error", len(got))
			}
			if !errors.Is(err, tt.wantIs) || !strings.Contains(err.Error(), tt.wantMsg) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q, want one line, %v, containing %q", err, tt.wantIs, tt.wantMsg)
			}
		})
	}
}
