package apitest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"accounts/internal/auth"
	"accounts/internal/config"
	"accounts/internal/limit"
)

// withLimits configures a test's service with limits (and the default
// request timeout unless the limits test sets one).
func withLimits(l limit.Config, requestTimeout time.Duration) func(*config.Config) {
	return func(c *config.Config) {
		c.Limits = l
		c.RequestTimeout = requestTimeout
	}
}

// retryAfter checks a refusal's status, body and Retry-After, and returns
// the delay it asks for.
func retryAfter(t *testing.T, label string, r response, status int, maxSeconds int) time.Duration {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d", label, r.status, status)
	}
	if r.obj["detail"] == nil || len(r.obj) != 1 {
		t.Errorf("%s: body keys %v, want detail", label, keys(r.obj))
	}
	secs, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || secs < 1 || secs > maxSeconds {
		t.Errorf("%s: Retry-After %q, want 1..%d seconds", label, r.header.Get("Retry-After"), maxSeconds)
	}
	return time.Duration(secs) * time.Second
}

// metricValue reads one sample of /metrics, 0 when absent.
func (e *env) metricValue(series string) float64 {
	e.t.Helper()
	r := e.send("GET", "/metrics", nil, nil, "")
	for _, line := range strings.Split(string(r.raw), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// A burst of wrong secrets for one client meets 429 with Retry-After once
// the client's failures fill the window; other customers are never
// affected, and once the window is over the real client works again,
// however long the guesser went on.
func TestThrottleWrongSecretBurst(t *testing.T) {
	const window = 2 * time.Second
	e := newEnvWith(t, withLimits(limit.Config{AuthWindow: window, ClientAuthFailures: 5, AddressAuthFailures: 1000}, time.Minute))
	a := e.newCustomer("Burst Target AB")
	b := e.newCustomer("Burst Bystander AB")
	wrong := httpWithHeaders(a.headers, map[string]string{auth.HeaderClientSecret: "not-the-secret"})
	statuses := map[int]int{}
	var wait time.Duration
	for i := range 40 {
		r := e.send("GET", orgPath, nil, wrong, "")
		statuses[r.status]++
		if r.status == http.StatusTooManyRequests {
			wait = retryAfter(t, "wrong secret past the limit", r, http.StatusTooManyRequests, int(window/time.Second))
		}
		if i%10 == 0 {
			if r := b.do("GET", orgPath, nil); r.status != http.StatusOK {
				t.Errorf("another customer during the burst: status %d", r.status)
			}
		}
	}
	if statuses[http.StatusUnauthorized] != 5 || statuses[http.StatusTooManyRequests] != 35 {
		t.Fatalf("statuses %v, want 5 × 401 then 35 × 429", statuses)
	}
	// The guesser goes on while the window runs out: the refusals are not
	// counted, so the block ends with the window.
	deadline := time.Now().Add(window + time.Second)
	for time.Now().Before(deadline) {
		e.send("GET", orgPath, nil, wrong, "")
		time.Sleep(50 * time.Millisecond)
		if a.do("GET", orgPath, nil).status == http.StatusOK {
			break
		}
	}
	time.Sleep(wait / 4)
	if r := a.do("GET", orgPath, nil); r.status != http.StatusOK {
		t.Errorf("the real client a window after the burst: status %d, want 200", r.status)
	}
	if n := e.metricValue(`accounts_security_events_total{reason="auth_failed"}`); n < 5 {
		t.Errorf("auth_failed events %v, want at least 5", n)
	}
	if n := e.metricValue(`accounts_security_events_total{reason="auth_failures_client"}`); n < 35 {
		t.Errorf("auth_failures_client events %v, want at least 35", n)
	}
	if !strings.Contains(suiteLog.String(), `"reason":"auth_failures_client"`) {
		t.Error("no security event in the log for the throttled client")
	}
	if strings.Contains(suiteLog.String(), "not-the-secret") {
		t.Error("a submitted secret reached the log")
	}
}

// Failures from one source address for many made-up clients block the
// address for the window.
func TestThrottleFailuresPerAddress(t *testing.T) {
	e := newEnvWith(t, withLimits(limit.Config{AuthWindow: 2 * time.Second, AddressAuthFailures: 5, ClientAuthFailures: 1000}, time.Minute))
	a := e.newCustomer("Address Target AB")
	for i := range 5 {
		forged := httpWithHeaders(a.headers, map[string]string{auth.HeaderClientEntity: fmt.Sprintf("00000000-0000-4000-8000-%012d", i)})
		if r := e.send("GET", orgPath, nil, forged, ""); r.status != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d, want 401", i, r.status)
		}
	}
	wait := retryAfter(t, "sixth attempt from the address", e.send("GET", orgPath, nil, a.headers, ""), http.StatusTooManyRequests, 2)
	time.Sleep(wait + 100*time.Millisecond)
	if r := a.do("GET", orgPath, nil); r.status != http.StatusOK {
		t.Errorf("after the window: status %d, want 200", r.status)
	}
}

// A client over its rate gets 429 with Retry-After; another client of the
// same customer has its own bucket.
func TestThrottleClientRate(t *testing.T) {
	e := newEnvWith(t, withLimits(limit.Config{ClientRate: 1, ClientBurst: 3}, time.Minute))
	a := e.newCustomer("Rate AB")
	other := e.newClient(a.customerID, "read")
	for i := range 3 {
		if r := a.do("GET", orgPath, nil); r.status != http.StatusOK {
			t.Fatalf("request %d of the burst: status %d", i, r.status)
		}
	}
	retryAfter(t, "past the burst", a.do("GET", orgPath, nil), http.StatusTooManyRequests, 1)
	if r := other.do("GET", orgPath, nil); r.status != http.StatusOK {
		t.Errorf("another client: status %d, want 200", r.status)
	}
	if n := e.metricValue(`accounts_limit{limit="client_rate"}`); n != 1 {
		t.Errorf("accounts_limit client_rate %v, want 1", n)
	}
}

// A write a read client may not make is a 403 whatever its rate, and
// spends none of it, as Django REST Framework checks permissions before
// throttles: past its burst the read client's writes are still 403, and
// its reads the 429; a 403 does not use up the burst.
func TestThrottlePermissionFirst(t *testing.T) {
	e := newEnvWith(t, withLimits(limit.Config{ClientRate: 1, ClientBurst: 2}, time.Minute))
	a := e.newCustomer("Rate Permission AB")
	reader := e.newClient(a.customerID, "read")
	for i := range 5 {
		if r := reader.do("POST", orgPath, map[string]any{"name": "Rate Permission Org"}); r.status != http.StatusForbidden {
			t.Fatalf("write %d of a read client: status %d, want 403", i, r.status)
		}
	}
	for i := range 2 {
		if r := reader.do("GET", orgPath, nil); r.status != http.StatusOK {
			t.Fatalf("read %d of the burst after the 403s: status %d, want 200", i, r.status)
		}
	}
	retryAfter(t, "past the burst", reader.do("GET", orgPath, nil), http.StatusTooManyRequests, 1)
	for _, m := range []string{"POST", "PUT"} {
		if r := reader.do(m, orgPath, map[string]any{"name": "Rate Permission Org"}); r.status != http.StatusForbidden {
			t.Errorf("%s of a read client past its burst: status %d, want 403", m, r.status)
		}
	}
}

// Past the in-flight cap a request is refused at once with 503, not queued.
func TestInFlightCapRefusesAtOnce(t *testing.T) {
	e := newEnvWith(t, withLimits(limit.Config{InFlight: 1}, time.Minute))
	a := e.newCustomer("In Flight AB")
	// A request whose body never finishes holds the one slot.
	conn := e.dialRaw("POST", orgPath, httpWithHeaders(a.headers, map[string]string{
		"Content-Type": "application/json", "Content-Length": "100"}), `{"name": `)
	deadline := time.Now().Add(5 * time.Second)
	for e.metricValue("accounts_requests_in_flight") != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	retryAfter(t, "second request", a.do("GET", orgPath, nil), http.StatusServiceUnavailable, 1)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the refusal took %v: it waited for the slot", took)
	}
	conn.Close()
	for time.Now().Before(deadline) {
		if a.do("GET", orgPath, nil).status == http.StatusOK {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Error("the slot was not given back when the held request ended")
}

// One customer's requests that hold their places — bodies that never
// finish — fill only that customer's share of the process: its next
// request is a 429 at once, while another customer is still served, though
// the stalled requests outnumber what the process as a whole would admit
// of one customer.
func TestCustomerShareOfInFlight(t *testing.T) {
	e := newEnvWith(t, withLimits(limit.Config{InFlight: 4, CustomerInFlight: 2}, time.Minute))
	a := e.newCustomer("Stalling AB")
	b := e.newCustomer("Bystander AB")
	stalled := httpWithHeaders(a.headers, map[string]string{"Content-Type": "application/json", "Content-Length": "100"})
	for range 3 {
		defer e.dialRaw("POST", orgPath, stalled, `{"name": `).Close()
	}
	// Counted once the request past the share has been refused.
	refused := `accounts_security_events_total{reason="customer_in_flight"}`
	deadline := time.Now().Add(5 * time.Second)
	for (e.metricValue(refused) != 1 || e.metricValue("accounts_requests_in_flight") != 2) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := e.metricValue("accounts_requests_in_flight"); n != 2 {
		t.Fatalf("requests in flight %v, want the customer's share, 2", n)
	}
	start := time.Now()
	retryAfter(t, "the stalling customer's next request", a.do("GET", orgPath, nil), http.StatusTooManyRequests, 1)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the refusal took %v: it waited for a place", took)
	}
	for i := range 3 {
		if r := b.do("GET", orgPath, nil); r.status != http.StatusOK {
			t.Errorf("another customer's request %d: status %d, want 200", i, r.status)
		}
	}
	if n := e.metricValue(`accounts_limit{limit="customer_in_flight"}`); n != 2 {
		t.Errorf("accounts_limit customer_in_flight %v, want 2", n)
	}
}

// seedOrganizations creates n organizations with bulk writes.
func (c *client) seedOrganizations(prefix string, n int) {
	c.e.t.Helper()
	for start := 0; start < n; start += 1000 {
		var items []map[string]any
		for i := start; i < min(n, start+1000); i++ {
			items = append(items, map[string]any{"name": fmt.Sprintf("%s %05d", prefix, i), "custom_id": strings.Repeat("c", 100)})
		}
		if r := c.do("POST", orgPath+"list/", items); r.status != http.StatusCreated {
			c.e.t.Fatalf("seeding organizations: status %d", r.status)
		}
	}
}

// Work that runs past the request's time limit is a 503 with Retry-After
// before anything went out, not an empty reply after the write timeout.
func TestRequestTimeLimitIsA503(t *testing.T) {
	e := newEnv(t)
	a := e.newCustomer("Slow Work AB")
	a.seedOrganizations("Slow Org", 3000)
	hurried := e.sibling(func(c *config.Config) { c.RequestTimeout = time.Millisecond })
	r := hurried.send("GET", orgPath+"?custom_id__icontains=zz&_order_by=-name", nil, a.headers, "")
	retryAfter(t, "list past its time limit", r, http.StatusServiceUnavailable, 1)
	if !strings.Contains(suiteLog.String(), `"reason":"request_timeout"`) {
		t.Error("no security event for the request past its time limit")
	}
}

// A response cut short — here the client goes away mid-stream — is logged
// and counted as aborted with the bytes sent, never as a success.
func TestAbortedStreamIsLoggedAsAborted(t *testing.T) {
	e := newEnv(t)
	a := e.newCustomer("Abort AB")
	a.seedOrganizations("Abort Org", 5000)
	const requestID = "7d0c5a3e-1b2f-4c6d-9e8a-3f5b7c9d1e20"
	// A server that can't put the whole list in its socket's buffer: the
	// list (held in memory until read) is still being written when the
	// client goes.
	slow := e.smallBufferServer()
	conn := slow.dialRaw("GET", orgPath, httpWithHeaders(a.headers, map[string]string{"X-Request-ID": requestID}), "")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("stream did not start: %v", err)
	}
	conn.(*net.TCPConn).SetLinger(0) // reset, with the rest unread
	conn.Close()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(suiteLog.String(), "\n") {
			if !strings.Contains(line, requestID) || !strings.Contains(line, `"msg":"request`) {
				continue
			}
			if !strings.Contains(line, `"outcome":"aborted"`) || strings.Contains(line, `"bytes":0,`) {
				t.Fatalf("the cut stream's access log line is not an abort with bytes sent")
			}
			if n := e.metricValue(`accounts_http_responses_aborted_total{route="GET /sales/organization/"}`); n != 1 {
				t.Errorf("aborted responses metric %v, want 1", n)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no access log line for the cut stream")
}

// A bulk write is expensive work from its first byte: a body still
// arriving holds the customer's expensive slot, so the next bulk write is
// a 429 at once instead of a second 16 MiB body read beside it.
func TestBulkBodyReadWithinItsAdmission(t *testing.T) {
	e := newEnvWith(t, withLimits(limit.Config{CustomerExpensive: 1}, time.Minute))
	a := e.newCustomer("Bulk Admission AB")
	stalled := httpWithHeaders(a.headers, map[string]string{"Content-Type": "application/json", "Content-Length": "100"})
	defer e.dialRaw("POST", orgPath+"list/", stalled, `[{"name": `).Close()
	held := `accounts_expensive_in_progress`
	deadline := time.Now().Add(5 * time.Second)
	for e.metricValue(held) != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := e.metricValue(held); n != 1 {
		t.Fatalf("expensive requests in progress %v while a bulk body arrives, want 1", n)
	}
	r := a.do("POST", orgPath+"list/", []map[string]any{{"name": "Bulk Admission Org"}})
	retryAfter(t, "a second bulk write", r, http.StatusTooManyRequests, 5)
}

// A bulk body of millions of items is refused for its count without
// decoding them all: 16 MiB of "[1,1,…" (8 million items) took a
// gigabyte when decoded whole before the count was checked.
func TestBulkManyItemsBoundedMemory(t *testing.T) {
	e := newEnv(t)
	a := e.newCustomer("Bulk Memory AB")
	body := "[" + strings.Repeat("1,", 8_000_000) + "1]"
	req, err := http.NewRequest("POST", e.server.URL+orgPath+"list/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range httpWithHeaders(a.headers, map[string]string{"Content-Type": "application/json"}) {
		req.Header.Set(k, v)
	}
	// Sent without the suite's checked transport, which decodes what it
	// sends to check it against the OpenAPI document.
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r := e.readResponse(resp)
	runtime.ReadMemStats(&after)
	if r.status != http.StatusBadRequest || len(r.obj) != 1 || r.obj["non_field_errors"] == nil {
		t.Fatalf("8,000,001 items: status %d, keys %v; want 400 with non_field_errors", r.status, keys(r.obj))
	}
	// The body, read whole, is 16 MB, and reading it grows a buffer.
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 128<<20 {
		t.Errorf("refusing 8,000,001 items allocated %d MiB, want at most 128", allocated>>20)
	}
}

// A flood of refusals of one client logs one security event line a second,
// the next one saying how many were folded since; the metric counts every
// refusal. A line each, flushed at once, filled the log by megabytes a
// second.
func TestSecurityEventsFolded(t *testing.T) {
	e := newEnvWith(t, withLimits(limit.Config{ClientRate: 0.5, ClientBurst: 1}, time.Minute))
	a := e.newCustomer("Folded Events AB")
	if r := a.do("GET", orgPath, nil); r.status != http.StatusOK {
		t.Fatalf("the burst's request: status %d", r.status)
	}
	const flood = 20
	for i := range flood {
		if r := a.do("GET", orgPath, nil); r.status != http.StatusTooManyRequests {
			t.Fatalf("refusal %d: status %d, want 429", i, r.status)
		}
	}
	type event struct {
		Msg, Reason string
		ClientID    string `json:"client_id"`
		Repeated    int
	}
	events := func() []event {
		var out []event
		for _, line := range strings.Split(suiteLog.String(), "\n") {
			var ev event
			if json.Unmarshal([]byte(line), &ev) == nil && ev.Msg == "security event" && ev.ClientID == a.id && ev.Reason == limit.ReasonClientRate {
				out = append(out, ev)
			}
		}
		return out
	}
	// The flood took well under a second: one line, two if it straddled
	// the end of the first line's second.
	logged := events()
	if len(logged) == 0 || len(logged) > 2 {
		t.Fatalf("%d refusals in a row logged %d security event lines, want 1 or 2", flood, len(logged))
	}
	time.Sleep(1100 * time.Millisecond)
	retryAfter(t, "a refusal after the window", a.do("GET", orgPath, nil), http.StatusTooManyRequests, 2)
	after := events()
	if len(after) != len(logged)+1 {
		t.Fatalf("a refusal after the window logged %d lines, want 1", len(after)-len(logged))
	}
	folded := 0
	for _, ev := range after {
		folded += ev.Repeated
	}
	if got := folded + len(after); got != flood+1 {
		t.Errorf("the lines account for %d refusals (%d logged, %d folded), want %d", got, len(after), folded, flood+1)
	}
	if n := e.metricValue(`accounts_security_events_total{reason="client_rate"}`); n != flood+1 {
		t.Errorf("accounts_security_events_total client_rate %v, want %d", n, flood+1)
	}
}
