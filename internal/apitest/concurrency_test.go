package apitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	_ "modernc.org/sqlite"
)

// concurrencyResult is one answer of a concurrent request; err is set when
// the request itself failed (goroutines must not call t.Fatal).
type concurrencyResult struct {
	status int
	raw    []byte
	obj    map[string]any
	err    error
}

// concurrencyDo sends body as JSON (none when nil) with the client's
// headers, without touching testing.T, so it is safe to call from any
// goroutine.
func concurrencyDo(hc *http.Client, c *client, method, path string, body []byte) concurrencyResult {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.e.server.URL+path, rd)
	if err != nil {
		return concurrencyResult{err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return concurrencyResult{err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return concurrencyResult{err: err}
	}
	r := concurrencyResult{status: resp.StatusCode, raw: raw}
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &r.obj); err != nil {
			r.err = err
		}
	}
	return r
}

// atOnce sends the requests all at once, each on a connection of its own,
// and returns their answers in order.
func atOnce(t *testing.T, c *client, reqs []concurrentRequest) []concurrencyResult {
	t.Helper()
	transport := &http.Transport{MaxIdleConnsPerHost: len(reqs), MaxConnsPerHost: len(reqs)}
	defer transport.CloseIdleConnections()
	hc := &http.Client{Transport: checkedTransport{t: t, next: transport}}
	bodies := make([][]byte, len(reqs))
	for i, r := range reqs {
		if r.body == nil {
			continue
		}
		var err error
		if bodies[i], err = json.Marshal(r.body); err != nil {
			t.Fatal(err)
		}
	}
	results := make([]concurrencyResult, len(reqs))
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for i, r := range reqs {
		ready.Add(1)
		done.Go(func() {
			ready.Done()
			<-start
			results[i] = concurrencyDo(hc, c, r.method, r.path, bodies[i])
		})
	}
	ready.Wait()
	close(start)
	done.Wait()
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("%s %d: %v", reqs[i].method, i, r.err)
		}
	}
	return results
}

// concurrentRequest is one request of atOnce.
type concurrentRequest struct {
	method, path string
	body         any
}

func TestConcurrencyOneIdentityPerTenant(t *testing.T) {
	const n = 40
	e := newEnv(t)
	c := e.newCustomer("Concurrency AB")
	f := c.fixtures()
	firstName := personal("Concurrency-Klara")
	body := map[string]any{
		"tenant":                     ref(f.tenant),
		"organization":               ref(f.org),
		"first_name":                 firstName,
		"current_registered_address": ref(f.address),
	}
	reqs := make([]concurrentRequest, n)
	for i := range reqs {
		reqs[i] = concurrentRequest{"POST", piPath, body}
	}
	results := atOnce(t, c, reqs)

	created := 0
	var createdObj map[string]any
	for i, r := range results {
		switch {
		case r.status >= 500:
			t.Errorf("request %d: status %d (server error)", i, r.status)
		case r.status == http.StatusCreated:
			created++
			createdObj = r.obj
		case r.status == http.StatusBadRequest:
			if _, ok := r.obj["tenant"]; !ok || len(r.obj) != 1 {
				t.Errorf("request %d: 400 with error keys %v, want exactly [tenant]", i, keys(r.obj))
			}
		default:
			t.Errorf("request %d: status %d, want 201 or 400", i, r.status)
		}
	}
	if created != 1 {
		t.Fatalf("%d of %d concurrent creates succeeded, want exactly 1", created, n)
	}

	// The one created is retrievable and is what was sent.
	id, _ := createdObj["id"].(string)
	if id == "" {
		t.Fatal("the 201 answer has no id")
	}
	got := c.do("GET", piPath+id+"/", nil)
	if got.status != http.StatusOK {
		t.Fatalf("GET the created identity: status %d", got.status)
	}
	if tr, _ := got.obj["tenant"].(map[string]any); tr == nil || tr["id"] != f.tenant["id"] {
		t.Errorf("created identity does not refer to the tenant")
	}
	if got.obj["first_name"] != firstName {
		t.Errorf("created identity: field first_name differs from what was sent")
	}

	// Exactly one row in the database, counted behind the service's back.
	db := e.rawDB()
	if rows := db.count(`SELECT count(*) FROM protected_identities`); rows != 1 {
		t.Errorf("protected_identities has %d rows, want 1", rows)
	}
	if forTenant := db.count(`SELECT count(*) FROM protected_identities WHERE tenant_id = ?`, f.tenant["id"]); forTenant != 1 {
		t.Errorf("protected_identities has %d rows for the tenant, want 1", forTenant)
	}

	// The service still works and still refuses a second identity.
	errorKeys(t, c.do("POST", piPath, map[string]any{"tenant": ref(f.tenant)}), "tenant")
}

// PATCHes of one object at once, each of one field, all take effect:
// none reads the object before another's change committed and writes
// its stale copy back (PostgreSQL runs write transactions side by side).
func TestConcurrencyPatchesOfOneObject(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Concurrent Patches AB")
	changes := []map[string]any{
		{"custom_id": "patched-custom-id"},
		{"last_name": personal("Patchsson")},
		{"email": personal("patched@example.com")},
		{"corporate_name": personal("Patched Firma AB")},
		{"birth_date": "1990-01-31"},
		{"ssn_is_coordination_number": true},
	}
	for round := range 5 {
		tenant := c.create(tenantPath, map[string]any{"first_name": personal("Concurrent-Tove")})
		path := tenantPath + tenant["id"].(string) + "/"
		var reqs []concurrentRequest
		for _, ch := range changes {
			reqs = append(reqs, concurrentRequest{"PATCH", path, ch})
		}
		for i, r := range atOnce(t, c, reqs) {
			if r.status != http.StatusOK {
				t.Fatalf("round %d, PATCH %d: status %d, want 200", round, i, r.status)
			}
		}
		got := c.do("GET", path, nil)
		for _, ch := range changes {
			for k, v := range ch {
				if got.obj[k] != v {
					t.Errorf("round %d: %s is %v after its PATCH was answered 200: a change was lost", round, k, got.obj[k])
				}
			}
		}
	}
}

// A PATCH racing the object's deletion is a 404 or a 200 before it, never
// a 500; a bulk update of it likewise is a 400 on the item or a 201.
func TestConcurrencyPatchAndDelete(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Patch Delete AB")
	for round := range 8 {
		tenant := c.create(tenantPath, map[string]any{"first_name": personal("Deleted-Dora")})
		path := tenantPath + tenant["id"].(string) + "/"
		res := atOnce(t, c, []concurrentRequest{
			{"DELETE", path, nil},
			{"PATCH", path, map[string]any{"custom_id": "x"}},
			{"PATCH", path, map[string]any{"last_name": personal("Deletesson")}},
			{"POST", tenantPath + "list/", []map[string]any{{"id": tenant["id"], "custom_id": "y"}}},
		})
		if res[0].status != http.StatusNoContent {
			t.Errorf("round %d: DELETE status %d, want 204", round, res[0].status)
		}
		for i, r := range res[1:3] {
			if r.status != http.StatusOK && r.status != http.StatusNotFound {
				t.Errorf("round %d, PATCH %d beside the DELETE: status %d, want 200 or 404", round, i, r.status)
			}
		}
		if r := res[3]; r.status != http.StatusCreated && r.status != http.StatusBadRequest {
			t.Errorf("round %d, bulk update beside the DELETE: status %d, want 201 or 400", round, r.status)
		}
		if r := c.do("GET", path, nil); r.status != http.StatusNotFound {
			t.Errorf("round %d: the deleted tenant answers %d, want 404", round, r.status)
		}
	}
}

// Two organizations made each other's parent at once: one PATCH is refused
// (the other made it a cycle), never both accepted.
func TestConcurrencyOrganizationCycle(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Cycle Race AB")
	for round := range 6 {
		x := c.create(orgPath, map[string]any{"name": fmt.Sprintf("Cycle X %d", round)})
		y := c.create(orgPath, map[string]any{"name": fmt.Sprintf("Cycle Y %d", round)})
		res := atOnce(t, c, []concurrentRequest{
			{"PATCH", orgPath + x["id"].(string) + "/", map[string]any{"organization": ref(y)}},
			{"PATCH", orgPath + y["id"].(string) + "/", map[string]any{"organization": ref(x)}},
		})
		accepted := 0
		for i, r := range res {
			switch r.status {
			case http.StatusOK:
				accepted++
			case http.StatusBadRequest:
				if _, ok := r.obj["organization"]; !ok || len(r.obj) != 1 {
					t.Errorf("round %d, PATCH %d: 400 with keys %v, want [organization]", round, i, keys(r.obj))
				}
			default:
				t.Errorf("round %d, PATCH %d: status %d, want 200 or 400", round, i, r.status)
			}
		}
		if accepted != 1 {
			t.Errorf("round %d: %d of the two PATCHes accepted, want 1: the organizations form a cycle", round, accepted)
		}
	}
}

// An organization's parent deleted while a create, a PATCH and a bulk write
// name it: each is made or refused with the reference's field error, never
// a 500. (On PostgreSQL the cycle check read the parent after its delete
// committed, and answered 500.)
func TestConcurrencyParentDeleted(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Parent Race AB")
	for round := range 40 {
		parent := c.create(orgPath, map[string]any{"name": fmt.Sprintf("Parent %d", round)})
		child := c.create(orgPath, map[string]any{"name": fmt.Sprintf("Child %d", round)})
		res := atOnce(t, c, []concurrentRequest{
			{"DELETE", orgPath + parent["id"].(string) + "/", nil},
			{"POST", orgPath, map[string]any{"name": fmt.Sprintf("New child %d", round), "organization": ref(parent)}},
			{"PATCH", orgPath + child["id"].(string) + "/", map[string]any{"organization": ref(parent)}},
			{"POST", orgPath + "list/", []map[string]any{{"name": fmt.Sprintf("Bulk child %d", round), "organization": ref(parent)}}},
		})
		if res[0].status != http.StatusNoContent {
			t.Errorf("round %d: DELETE status %d, want 204", round, res[0].status)
		}
		for i, want := range []int{http.StatusCreated, http.StatusOK, http.StatusCreated} {
			r := res[i+1]
			switch {
			case r.status == want:
			case r.status == http.StatusBadRequest && i < 2:
				if _, ok := r.obj["organization"]; !ok || len(r.obj) != 1 {
					t.Errorf("round %d, write %d: 400 with keys %v, want [organization]", round, i, keys(r.obj))
				}
			case r.status == http.StatusBadRequest:
				// A bulk write's errors are one object per item.
				if !strings.Contains(string(r.raw), `"organization"`) {
					t.Errorf("round %d, bulk write: 400 without an organization error", round)
				}
			default:
				t.Errorf("round %d, write %d beside the parent's DELETE: status %d, want %d or 400", round, i, r.status, want)
			}
		}
	}
}

// A protected identity created while its tenant is being deleted is either
// refused (the tenant is gone) or deleted with the tenant as a cascade the
// audit log records: never removed unseen by the database's own ON DELETE
// (on PostgreSQL the delete looked for identities before the create had
// committed).
func TestConcurrencyIdentityCreatedAsItsTenantIsDeleted(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Tenant Race AB")
	var cascaded []string
	for round := range 30 {
		tenant := c.create(tenantPath, map[string]any{"first_name": personal(fmt.Sprintf("Race-Tenant-%d", round))})
		res := atOnce(t, c, []concurrentRequest{
			{"POST", piPath, map[string]any{"tenant": ref(tenant), "first_name": personal(fmt.Sprintf("Race-Identity-%d", round))}},
			{"DELETE", tenantPath + tenant["id"].(string) + "/", nil},
		})
		if res[1].status != http.StatusNoContent {
			t.Errorf("round %d: DELETE of the tenant: status %d, want 204", round, res[1].status)
		}
		switch r := res[0]; r.status {
		case http.StatusCreated:
			id := r.obj["id"].(string)
			if got := c.do("GET", piPath+id+"/", nil); got.status != http.StatusNotFound {
				t.Errorf("round %d: the identity of the deleted tenant: status %d, want 404", round, got.status)
			}
			cascaded = append(cascaded, id)
		case http.StatusBadRequest:
			if _, ok := r.obj["tenant"]; !ok || len(r.obj) != 1 {
				t.Errorf("round %d: 400 with error keys %v, want exactly [tenant]", round, keys(r.obj))
			}
		default:
			t.Errorf("round %d: POST beside the tenant's DELETE: status %d, want 201 or 400", round, r.status)
		}
	}
	recorded := map[string]bool{}
	for _, l := range auditEntries(t, e, c.customerID) {
		if l.Action == "cascade_delete" && l.Resource == "Protectedidentity" {
			for _, id := range l.ObjectIDs {
				recorded[id] = true
			}
		}
	}
	for _, id := range cascaded {
		if !recorded[id] {
			t.Errorf("identity %s was deleted with its tenant without a cascade_delete entry", id)
		}
	}
}
