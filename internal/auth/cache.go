package auth

import (
	"crypto/sha256"
	"sync"
	"time"

	"accounts/internal/store"
)

// ClientCacheTTL is how long a client read from the database keeps
// authenticating its requests without reading it again, counted from when
// that read began. It is the bound on revocation: a client revoked (or
// deleted with its customer) is refused by every process, on any database,
// for every request that arrives ClientCacheTTL or more after the
// revocation committed.
const ClientCacheTTL = time.Second

// clientCacheSize bounds the clients cached at once. Only clients that
// authenticated are cached, so it is reached only by that many distinct
// clients in one ClientCacheTTL; past it, an arbitrary entry makes room.
const clientCacheSize = 4096

// cacheKey is a client's entity id with the digest of the secret it
// presented: a request with another secret never finds the entry that a
// right secret made, and is checked against the database.
type cacheKey struct {
	entity string
	digest [sha256.Size]byte
}

// clientCache holds recently authenticated clients as the database
// returned them.
type clientCache struct {
	mu      sync.Mutex
	max     int
	entries map[cacheKey]cachedClient
}

type cachedClient struct {
	client store.Client
	// read is when the read that returned client began: the client is as
	// the database was then, or newer.
	read time.Time
}

func newClientCache(max int) *clientCache {
	return &clientCache{max: max, entries: make(map[cacheKey]cachedClient)}
}

// get returns the client cached under k when it was read less than
// ClientCacheTTL before now.
func (c *clientCache) get(k cacheKey, now time.Time) (store.Client, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok {
		return store.Client{}, false
	}
	if now.Sub(e.read) >= ClientCacheTTL {
		delete(c.entries, k)
		return store.Client{}, false
	}
	return e.client, true
}

// put caches a client read at read. When the cache is full it drops the
// expired entries, and if none was, an arbitrary one.
func (c *clientCache) put(k cacheKey, client store.Client, read time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[k]; !ok && len(c.entries) >= c.max {
		for key, e := range c.entries {
			if read.Sub(e.read) >= ClientCacheTTL {
				delete(c.entries, key)
			}
		}
		for key := range c.entries {
			if len(c.entries) < c.max {
				break
			}
			delete(c.entries, key)
		}
	}
	c.entries[k] = cachedClient{client: client, read: read}
}
