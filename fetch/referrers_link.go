package fetch

import (
	"fmt"
	"net/http"
	"strings"
)

// maxReferrerPages bounds the pages of one referrers list: a registry
// could otherwise send empty pages, each linking to the next, for ever.
const maxReferrerPages = 64

// nextPage returns the query of the next page of a paged referrers answer,
// "" when resp is the last page. The spec pages the list with a Link header
// (rel="next"); the link is followed only to the same host and path that
// resp answered, so that a registry cannot send imgfs, with its
// credentials, elsewhere. An ns= the link may carry is dropped: send adds
// its own for mirrors.
func nextPage(resp *http.Response) (string, error) {
	link := nextLink(resp.Header.Values("Link"))
	if link == "" {
		return "", nil
	}
	here := resp.Request.URL
	u, err := here.Parse(link)
	if err != nil || u.Host != here.Host || u.EscapedPath() != here.EscapedPath() {
		return "", fmt.Errorf("%w: registry's next-page link %s leaves the referrers list", ErrUnsupported, oneLine(link, 200))
	}
	q := u.Query()
	q.Del("ns")
	if len(q) == 0 {
		return "", fmt.Errorf("%w: registry's next-page link %s names no page", ErrUnsupported, oneLine(link, 200))
	}
	return q.Encode(), nil
}

// nextLink finds the URI of the rel="next" link in Link header values of
// the form `<uri>; rel="next"` (RFC 8288), or "".
func nextLink(values []string) string {
	for _, v := range values {
		for _, link := range strings.Split(v, ",") {
			target, params, ok := strings.Cut(link, ";")
			target = strings.TrimSpace(target)
			if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				continue
			}
			for _, p := range strings.Split(params, ";") {
				name, value, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(name, "rel") && strings.Trim(value, `"`) == "next" {
					return target[1 : len(target)-1]
				}
			}
		}
	}
	return ""
}
