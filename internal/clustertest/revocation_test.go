package clustertest

import (
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"accounts/internal/auth"
	"accounts/internal/store/storetest"
)

// revocationBound is how long a revoked client may still be served, as
// docs/benchmarks.md states it: the TTL of the cache of authenticated
// clients (auth.ClientCacheTTL) may not exceed it.
const revocationBound = time.Second

// A client revoked with the command line is refused by every serve process
// on the database within revocationBound. Two processes are each asked by
// the client without pause, before the revocation (so that each holds it
// in its cache) and after; every request sent revocationBound or more
// after the revoke command returned must be refused, by both.
func TestRevocationReachesEveryProcess(t *testing.T) {
	if auth.ClientCacheTTL > revocationBound {
		t.Fatalf("auth.ClientCacheTTL is %v, above the stated bound %v", auth.ClientCacheTTL, revocationBound)
	}
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			database := filepath.Join(t.TempDir(), "accounts.db")
			if engine == "postgres" {
				database = storetest.PostgresURL(t)
			}
			testRevocationReachesEveryProcess(t, newDeployment(t, database))
		})
	}
}

// probe is one request of the client: when it was sent, counted from the
// revocation (negative before it), and its status.
type probe struct {
	sent   time.Duration
	status int
	err    error
}

func testRevocationReachesEveryProcess(t *testing.T, d *deployment) {
	bases := []string{d.Start().Base, d.Start().Base}
	status, tenant, err := d.do(bases[0], "POST", tenantPath, map[string]any{"first_name": "Revocation-Tenant-Probe"})
	if err != nil || status != http.StatusCreated {
		t.Fatalf("creating the tenant: status %d, err %v", status, err)
	}
	path := tenantPath + tenant["id"].(string) + "/"

	var (
		mu        sync.Mutex
		revokedAt time.Time // zero until the revoke command returned
	)
	since := func() time.Duration {
		mu.Lock()
		defer mu.Unlock()
		if revokedAt.IsZero() {
			return -1
		}
		return time.Since(revokedAt)
	}
	probes := make([][]probe, len(bases))
	var wg sync.WaitGroup
	for i, base := range bases {
		wg.Go(func() {
			for {
				sent := since()
				if sent > revocationBound+300*time.Millisecond {
					return
				}
				status, _, err := d.do(base, "GET", path, nil)
				probes[i] = append(probes[i], probe{sent: sent, status: status, err: err})
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	// Both processes serve the client (and so have it cached) for a while
	// before the revocation.
	time.Sleep(200 * time.Millisecond)
	if _, err := d.Run("client", "revoke", "--id", d.headers[auth.HeaderClientEntity]); err != nil {
		t.Fatalf("client revoke: %v", err)
	}
	mu.Lock()
	revokedAt = time.Now()
	mu.Unlock()
	wg.Wait()

	// A refusal is a 401, or a 429 once the failed authentications of the
	// revoked client are throttled (limit.Config.ClientAuthFailures).
	for i, ps := range probes {
		servedBefore, unauthorized, refusedAfter := false, false, false
		for _, p := range ps {
			refused := p.status == http.StatusUnauthorized || p.status == http.StatusTooManyRequests
			unauthorized = unauthorized || p.status == http.StatusUnauthorized
			switch {
			case p.err != nil:
				t.Errorf("process %d: a request %v after the revocation: %v", i, p.sent, p.err)
			case p.sent < 0:
				servedBefore = servedBefore || p.status == http.StatusOK
			case p.sent >= revocationBound && !refused:
				t.Errorf("process %d: a request sent %v after the revocation got status %d, want 401 or 429", i, p.sent, p.status)
			case p.sent >= revocationBound:
				refusedAfter = true
			}
		}
		if !servedBefore || !unauthorized || !refusedAfter {
			t.Errorf("process %d: served before the revocation %v, a 401 after it %v, refused after the bound %v; want all three",
				i, servedBefore, unauthorized, refusedAfter)
		}
	}
}
