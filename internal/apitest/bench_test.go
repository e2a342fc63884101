package apitest

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// seedTenants bulk-creates n tenants with synthetic names and returns their ids.
func seedTenants(tb testing.TB, c *client, n int) []string {
	tb.Helper()
	ids := make([]string, 0, n)
	for start := 0; start < n; start += 1000 {
		items := make([]map[string]any, 0, 1000)
		for i := start; i < min(n, start+1000); i++ {
			items = append(items, map[string]any{"first_name": fmt.Sprintf("Bench%06d", i), "custom_id": fmt.Sprintf("t%06d", i)})
		}
		r := c.do("POST", tenantPath+"list/", items)
		if r.status != http.StatusCreated {
			tb.Fatalf("seeding tenants: status %d", r.status)
		}
		for _, o := range r.objects {
			ids = append(ids, o.(map[string]any)["id"].(string))
		}
	}
	return ids
}

// benchSurnames gives one in ten identities a surname containing "berg".
var benchSurnames = []string{"Lindqvist", "Berglund", "Nilsson", "Holm", "Sjöström", "Ek", "Dahl", "Falk", "Wikström", "Åberg"}

// BenchmarkListFilteredPage measures one page of 100 protected identities
// filtered on a personal field and ordered by another, out of 10,000 in one
// customer: every row is decrypted, filtered and sorted in the service.
func BenchmarkListFilteredPage(b *testing.B) {
	e := newEnv(b)
	c := e.newCustomer("Bench AB")
	tenants := seedTenants(b, c, 10000)
	for start := 0; start < len(tenants); start += 1000 {
		items := make([]map[string]any, 0, 1000)
		for i := start; i < start+1000; i++ {
			items = append(items, map[string]any{
				"tenant":     map[string]any{"id": tenants[i]},
				"first_name": fmt.Sprintf("Förnamn%05d", i),
				"last_name":  fmt.Sprintf("%s%05d", benchSurnames[i%len(benchSurnames)], i),
				"email":      fmt.Sprintf("bench%05d@example.se", i),
			})
		}
		if r := c.do("POST", piPath+"list/", items); r.status != http.StatusCreated {
			b.Fatalf("seeding identities: status %d", r.status)
		}
	}
	path := piPath + "list/?last_name__icontains=BERG&_order_by=last_name&_page=1&_page_size=100"
	// The first list after writes decrypts every row into the service's
	// object cache; the loop measures the steady state that follows.
	if r := c.do("GET", path, nil); r.status != http.StatusOK {
		b.Fatalf("warm-up: status %d", r.status)
	}
	b.ResetTimer()
	for b.Loop() {
		r := c.do("GET", path, nil)
		if r.status != http.StatusOK || len(r.objects) != 100 {
			b.Fatalf("status %d, %d objects", r.status, len(r.objects))
		}
	}
}

// BenchmarkCreate1000 creates 1,000 tenants as 1,000 single POSTs and as
// one bulk write, in the same iteration, and reports both times and their
// ratio (bulk speed-up).
func BenchmarkCreate1000(b *testing.B) {
	e := newEnv(b)
	c := e.newCustomer("Bench AB")
	var single, bulk time.Duration
	batch := 0
	for b.Loop() {
		items := make([]map[string]any, 1000)
		for i := range items {
			items[i] = map[string]any{"first_name": fmt.Sprintf("Bulk%d-%04d", batch, i)}
		}
		batch++
		start := time.Now()
		for _, it := range items {
			if r := c.do("POST", tenantPath, it); r.status != http.StatusCreated {
				b.Fatalf("single create: status %d", r.status)
			}
		}
		single += time.Since(start)
		start = time.Now()
		if r := c.do("POST", tenantPath+"list/", items); r.status != http.StatusCreated {
			b.Fatalf("bulk create: status %d", r.status)
		}
		bulk += time.Since(start)
	}
	b.ReportMetric(float64(single.Milliseconds())/float64(b.N), "single-ms/1000")
	b.ReportMetric(float64(bulk.Milliseconds())/float64(b.N), "bulk-ms/1000")
	b.ReportMetric(float64(single)/float64(bulk), "bulk-speedup")
}
