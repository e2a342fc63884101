package loadtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"accounts/internal/servetest"
)

// syncWorkers is how many workers the nightly sync below runs at once: as
// many as a customer may have bulk writes in progress by default
// (limit.Config.CustomerExpensive; a page of 1,000 is not expensive work).
const syncWorkers = 3

// A nightly sync's shape — workers that each write tenants in bulks of
// 1,000 and read them back in pages of 1,000 — is never refused by the
// default limits: every request succeeds, and serve logs no refusal.
func TestNightlySyncNotRefused(t *testing.T) {
	d := servetest.NewSQLiteDeployment(t)
	cust := d.Customer("Sync AB")
	c := newAPIClient("", d.Client(cust, "read_write"), syncWorkers)
	sp := startServe(d)
	c.base = sp.Base

	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for w := range syncWorkers {
		wg.Go(func() {
			for round := range 5 {
				items := make([]map[string]any, 1000)
				for i := range items {
					items[i] = map[string]any{"first_name": "Synctenant", "custom_id": strconv.Itoa((w*10+round)*1000 + i)}
				}
				body, _ := json.Marshal(items)
				r := c.do("POST", tenantPath+"list/", body)
				mu.Lock()
				counts[fmt.Sprintf("bulk %d", r.status)]++
				mu.Unlock()
				for page := 1; page <= 3; page++ {
					r := c.do("GET", tenantPath+"?_page_size=1000&_page="+strconv.Itoa(page), nil)
					mu.Lock()
					counts[fmt.Sprintf("page %d", r.status)]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	_, refusals := sp.logSummary()
	t.Logf("%d workers: %v; refusals %v", syncWorkers, counts, refusals)
	if want := syncWorkers * 5; counts[fmt.Sprintf("bulk %d", http.StatusCreated)] != want {
		t.Errorf("%d bulk writes created, want %d", counts["bulk 201"], want)
	}
	if want := syncWorkers * 5 * 3; counts[fmt.Sprintf("page %d", http.StatusOK)] != want {
		t.Errorf("%d pages read, want %d", counts["page 200"], want)
	}
	if len(refusals) > 0 {
		t.Errorf("serve refused requests of the sync: %v", refusals)
	}
}
