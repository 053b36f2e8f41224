package fetch

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/imgfs/imgfs/fetch/hosts"
)

// Timings of the routing memory. A host that refused a connection is put
// last for hostDownFor, so that reads do not each wait on a dead mirror
// first. A mirror that answered a range with the whole blob is put last
// for that blob for wholeAnswerFor: it is filling its cache (distribution
// in proxy mode does this), and will answer ranges once it has.
const (
	hostDownFor    = 30 * time.Second
	wholeAnswerFor = 10 * time.Second
)

// maxRoutes bounds the blobs the routing memory remembers; past it, it
// forgets them all, which costs a fallback at worst.
const maxRoutes = 4096

// routes remembers where a remote's requests went well: the host that
// served each blob's first bytes (its range reads go there first), the
// hosts that are down, and the mirrors that answered a blob's ranges with
// the whole blob.
type routes struct {
	mu     sync.Mutex
	sticky map[digest.Digest]*endpoint
	down   map[*endpoint]time.Time
	whole  map[routeKey]time.Time
}

type routeKey struct {
	ep *endpoint
	d  digest.Digest
}

func (rt *routes) served(d digest.Digest, ep *endpoint) {
	if d == "" {
		return
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.sticky == nil || len(rt.sticky) >= maxRoutes {
		rt.sticky = map[digest.Digest]*endpoint{}
	}
	rt.sticky[d] = ep
}

func (rt *routes) markDown(ep *endpoint) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.down == nil {
		rt.down = map[*endpoint]time.Time{}
	}
	rt.down[ep] = time.Now().Add(hostDownFor)
}

func (rt *routes) markWhole(ep *endpoint, d digest.Digest) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.whole == nil || len(rt.whole) >= maxRoutes {
		rt.whole = map[routeKey]time.Time{}
	}
	rt.whole[routeKey{ep, d}] = time.Now().Add(wholeAnswerFor)
}

// order returns the endpoints allowed c, in the order to try them for
// blob d ("" for none): the host that served d first, then the others in
// hosts.toml order; hosts recently down, or recently answering d's ranges
// whole, go last rather than not at all.
func (rt *routes) order(eps []*endpoint, c hosts.Capability, d digest.Digest) []*endpoint {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	now := time.Now()
	var first, good, later []*endpoint
	for _, ep := range eps {
		switch {
		case !ep.Allows(c):
		case now.Before(rt.down[ep]) || now.Before(rt.whole[routeKey{ep, d}]):
			later = append(later, ep)
		case d != "" && rt.sticky[d] == ep:
			first = append(first, ep)
		default:
			good = append(good, ep)
		}
	}
	return append(append(first, good...), later...)
}

// fallBack is what a judge returns to send the request to the next
// host; on the last host the judge must return a real error instead.
type fallBack struct{ reason string }

func (f fallBack) Error() string { return f.reason }

// do sends the GET for path to the hosts allowed c, in order, until one
// answers. A host that cannot be reached, or answers 404 or 5xx, is
// followed by the next; the last host's answer stands. judge sees every
// other answer: it returns nil to accept (keeping the body), a fallBack
// to try the next host (it closes the body), or an error to stop.
func (r *Remote) do(ctx context.Context, c hosts.Capability, d digest.Digest, what, path string, header http.Header,
	judge func(ep *endpoint, resp *http.Response, last bool) error) error {
	eps := r.routes.order(r.endpoints, c, d)
	if len(eps) == 0 {
		return fmt.Errorf("%s: no host in hosts.toml for %s has the %s capability", what, r.ref.Registry, c)
	}
	for i, ep := range eps {
		last := i == len(eps)-1
		resp, err := r.get(ctx, ep, path, header)
		if err != nil {
			if last || ctx.Err() != nil {
				return err
			}
			r.routes.markDown(ep)
			r.log.Warn("registry host failed, trying the next", "host", ep.role(), "what", what, "error", err)
			continue
		}
		if !last && (resp.StatusCode == http.StatusNotFound || resp.StatusCode >= 500) {
			resp.Body.Close()
			r.log.Warn("registry host failed, trying the next", "host", ep.role(), "what", what, "status", resp.Status)
			continue
		}
		err = judge(ep, resp, last)
		if fb, ok := err.(fallBack); ok && !last {
			r.log.Debug("registry host passed over", "host", ep.role(), "what", what, "reason", fb.reason)
			continue
		}
		if err == nil {
			r.routes.served(d, ep)
			r.log.Debug("registry host served", "host", ep.role(), "what", what, "range", header.Get("Range"), "status", resp.StatusCode)
		}
		return err
	}
	return fmt.Errorf("%s: no host answered", what) // not reached: the last host always returns
}
