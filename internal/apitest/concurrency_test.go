package apitest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"

	_ "modernc.org/sqlite"
)

// concurrencyResult is one answer of a concurrent request; err is set when
// the request itself failed (goroutines must not call t.Fatal).
type concurrencyResult struct {
	status int
	obj    map[string]any
	err    error
}

// concurrencyPost POSTs body as JSON with the client's headers, without
// touching testing.T, so it is safe to call from any goroutine.
func concurrencyPost(hc *http.Client, c *client, path string, body []byte) concurrencyResult {
	req, err := http.NewRequest("POST", c.e.server.URL+path, bytes.NewReader(body))
	if err != nil {
		return concurrencyResult{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
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
	r := concurrencyResult{status: resp.StatusCode}
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &r.obj); err != nil {
			r.err = err
		}
	}
	return r
}

func TestConcurrencyOneIdentityPerTenant(t *testing.T) {
	const n = 40
	e := newEnv(t)
	c := e.newCustomer("Concurrency AB")
	f := c.fixtures()
	firstName := personal("Concurrency-Klara")
	body, err := json.Marshal(map[string]any{
		"tenant":                     ref(f.tenant),
		"organization":               ref(f.org),
		"first_name":                 firstName,
		"current_registered_address": ref(f.address),
	})
	if err != nil {
		t.Fatal(err)
	}

	transport := &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: n}
	defer transport.CloseIdleConnections()
	hc := &http.Client{Transport: checkedTransport{t: t, next: transport}}

	results := make([]concurrencyResult, n)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := 0; i < n; i++ {
		go func(i int) {
			defer done.Done()
			ready.Done()
			<-start
			results[i] = concurrencyPost(hc, c, piPath, body)
		}(i)
	}
	ready.Wait()
	close(start)
	done.Wait()

	created := 0
	var createdObj map[string]any
	for i, r := range results {
		switch {
		case r.err != nil:
			t.Errorf("request %d failed: %v", i, r.err)
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
