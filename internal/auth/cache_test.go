package auth

import (
	"crypto/sha256"
	"strconv"
	"testing"
	"time"

	"accounts/internal/store"
)

// A cached client serves for less than ClientCacheTTL from its read, and
// not at or after it.
func TestClientCacheExpires(t *testing.T) {
	c := newClientCache(8)
	k := cacheKey{entity: "client", digest: sha256.Sum256([]byte("secret"))}
	read := time.Now()
	c.put(k, store.Client{ID: "client"}, read)
	if got, ok := c.get(k, read.Add(ClientCacheTTL-time.Millisecond)); !ok || got.ID != "client" {
		t.Errorf("just inside the TTL: cached %v, id %q", ok, got.ID)
	}
	if _, ok := c.get(k, read.Add(ClientCacheTTL)); ok {
		t.Error("at the TTL: still cached")
	}
	if _, ok := c.get(k, read); ok {
		t.Error("after expiring: cached again without a put")
	}
}

// The cache never holds more than its size, and a full cache still takes
// the newest client.
func TestClientCacheBounded(t *testing.T) {
	const size = 16
	c := newClientCache(size)
	now := time.Now()
	var last cacheKey
	for i := range 5 * size {
		last = cacheKey{entity: strconv.Itoa(i)}
		c.put(last, store.Client{ID: last.entity}, now)
		if n := len(c.entries); n > size {
			t.Fatalf("after %d puts: %d entries, more than %d", i+1, n, size)
		}
	}
	if _, ok := c.get(last, now); !ok {
		t.Error("the newest client is not cached in a full cache")
	}
}
