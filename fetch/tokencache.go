package fetch

import (
	"context"
	"fmt"
	"sync"
	"time"

	"oras.land/oras-go/v2/registry/remote/auth"
)

// tokenReuseWindow is how long a freshly fetched token answers for every
// request that was turned away with the token before it. It is far below
// any real token lifetime (Docker Hub's is 5 minutes).
const tokenReuseWindow = time.Second

// renewOnceCache is oras' token cache, except that a token fetched less
// than tokenReuseWindow ago is reused instead of fetching another. When a
// token expires, every request in flight with it is turned away at about
// the same time; oras joins the fetches that overlap, and this joins
// those that come just after, so an expiry costs one renewal.
type renewOnceCache struct {
	auth.Cache

	mu      sync.Mutex
	fetched map[string]time.Time
}

func newRenewOnceCache() *renewOnceCache {
	return &renewOnceCache{Cache: auth.NewCache(), fetched: map[string]time.Time{}}
}

func (c *renewOnceCache) Set(ctx context.Context, registry string, scheme auth.Scheme, key string, fetch func(context.Context) (string, error)) (string, error) {
	id := fmt.Sprintf("%s\x00%v\x00%s", registry, scheme, key)
	c.mu.Lock()
	at, ok := c.fetched[id]
	c.mu.Unlock()
	if ok && time.Since(at) < tokenReuseWindow {
		if token, err := c.Cache.GetToken(ctx, registry, scheme, key); err == nil {
			return token, nil
		}
	}
	token, err := c.Cache.Set(ctx, registry, scheme, key, fetch)
	if err == nil {
		c.mu.Lock()
		if len(c.fetched) >= maxRoutes {
			clear(c.fetched)
		}
		c.fetched[id] = time.Now()
		c.mu.Unlock()
	}
	return token, err
}
