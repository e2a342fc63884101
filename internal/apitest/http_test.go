package apitest

import (
	"bytes"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// httpWithHeaders returns a copy of h with the extra headers set.
func httpWithHeaders(h map[string]string, extra map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// httpDetailOnly asserts a body of exactly one key, detail.
func httpDetailOnly(t *testing.T, label string, r response) {
	t.Helper()
	if len(r.obj) != 1 || r.obj["detail"] == nil {
		t.Errorf("%s: body keys %v, want exactly detail", label, keys(r.obj))
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json", label, ct)
	}
}

func httpAllowSet(r response) map[string]bool {
	set := map[string]bool{}
	for _, line := range r.header.Values("Allow") {
		for _, m := range strings.Split(line, ",") {
			if m = strings.TrimSpace(m); m != "" {
				set[m] = true
			}
		}
	}
	return set
}

func TestHTTPTrailingSlashRedirect(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("HTTP Redirect AB")
	f := c.fixtures()
	pi := c.create(piPath, map[string]any{"tenant": ref(f.tenant)})
	id := pi["id"].(string)

	cases := []struct {
		method, path, location string
	}{
		{"GET", strings.TrimSuffix(piPath, "/"), piPath},
		{"GET", strings.TrimSuffix(piPath, "/") + "?_page=1&_page_size=5", piPath + "?_page=1&_page_size=5"},
		{"POST", strings.TrimSuffix(tenantPath, "/"), tenantPath},
		{"GET", piPath + id, piPath + id + "/"},
		{"GET", piPath + id + "?_slim=true", piPath + id + "/?_slim=true"},
		{"PATCH", piPath + id, piPath + id + "/"},
		{"DELETE", orgPath + f.org["id"].(string), orgPath + f.org["id"].(string) + "/"},
	}
	for i, tc := range cases {
		var body any
		if tc.method == "POST" || tc.method == "PATCH" {
			body = map[string]any{}
		}
		r := c.do(tc.method, tc.path, body)
		if r.status != http.StatusPermanentRedirect {
			t.Errorf("case %d %s %s: status %d, want 308", i, tc.method, tc.path, r.status)
			continue
		}
		if loc := r.header.Get("Location"); loc != tc.location {
			t.Errorf("case %d %s %s: Location %q, want %q", i, tc.method, tc.path, loc, tc.location)
		}
		if len(r.raw) != 0 || r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("case %d %s %s: a body of %d bytes, Cache-Control %q; want none and no-store (the query may hold personal values)",
				i, tc.method, tc.path, len(r.raw), r.header.Get("Cache-Control"))
		}
	}
	// Nothing was deleted or changed by the redirected requests.
	if r := c.do("GET", orgPath+f.org["id"].(string)+"/", nil); r.status != http.StatusOK {
		t.Errorf("organization after a redirected DELETE: status %d, want 200", r.status)
	}
}

// A path spelled in any form but its plain one — an empty, "." or ".."
// segment, a percent-escape — is not found, before credentials are
// looked at: never redirected to another spelling, never served. So is a
// request target that is no path (CONNECT's authority, "*").
func TestHTTPUnplainPathsNotFound(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("HTTP Paths AB")
	f := c.fixtures()
	pi := c.create(piPath, map[string]any{"tenant": ref(f.tenant)})
	item := piPath + pi["id"].(string) + "/"
	for _, tc := range []struct{ method, target string }{
		{"GET", "/accounts//users/customer/protectedidentity/"},
		{"GET", "/accounts/users/customer/./protectedidentity/"},
		{"GET", "/accounts/users/customer/tenant/../protectedidentity/"},
		{"GET", tenantPath + "../protectedidentity/" + pi["id"].(string) + "/"},
		{"GET", item + "."},
		{"GET", strings.TrimSuffix(item, "/") + "%2F"},
		{"GET", strings.TrimSuffix(piPath, "/") + "%2flist/"},
		{"GET", "/accounts/users/customer/%2e%2e/customer/protectedidentity/"},
		{"DELETE", "/sales//organization/" + f.org["id"].(string) + "/"},
		{"GET", "//healthz"},
		{"CONNECT", "example.com:443"},
		{"GET", "*"},
	} {
		r := e.rawRequest(tc.method, tc.target, c.headers, "")
		label := tc.method + " " + tc.target
		if r.status != http.StatusNotFound {
			t.Errorf("%s: status %d (Location %q), want 404", label, r.status, r.header.Get("Location"))
			continue
		}
		httpDetailOnly(t, label, r)
		if r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", label, r.header.Get("Cache-Control"))
		}
	}
	if r := c.do("GET", orgPath+f.org["id"].(string)+"/", nil); r.status != http.StatusOK {
		t.Errorf("organization after a DELETE by an unplain path: status %d, want 200", r.status)
	}
	// Any other escape decodes to the path it spells, which is served.
	if r := c.do("GET", "/%61ccounts/users/customer/protectedidentity/"+pi["id"].(string)+"/", nil); r.status != http.StatusOK {
		t.Errorf("GET with an escaped letter in the path: status %d, want 200", r.status)
	}
	// An unknown path below a route's prefix is the same 404.
	r := c.do("GET", item+"extra/", nil)
	if r.status != http.StatusNotFound || r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("GET below an object: status %d, Cache-Control %q; want 404, no-store", r.status, r.header.Get("Cache-Control"))
	}
}

func TestHTTPPutIsMethodNotAllowed(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("HTTP Put AB")
	f := c.fixtures()
	pi := c.create(piPath, map[string]any{"tenant": ref(f.tenant)})

	cases := []struct {
		path string
		want []string // methods that must be in Allow
	}{
		{piPath + pi["id"].(string) + "/", []string{"GET", "PATCH", "DELETE"}},
		{tenantPath + f.tenant["id"].(string) + "/", []string{"GET", "PATCH", "DELETE"}},
		{piPath, []string{"GET", "POST"}},
		{addressPath, []string{"GET", "POST"}},
	}
	for i, tc := range cases {
		r := c.do("PUT", tc.path, map[string]any{"first_name": "x"})
		if r.status != http.StatusMethodNotAllowed {
			t.Errorf("case %d PUT %s: status %d, want 405", i, tc.path, r.status)
			continue
		}
		httpDetailOnly(t, "PUT "+tc.path, r)
		allow := httpAllowSet(r)
		if len(allow) == 0 {
			t.Errorf("case %d PUT %s: no Allow header", i, tc.path)
		}
		for _, m := range tc.want {
			if !allow[m] {
				t.Errorf("case %d PUT %s: Allow %q lacks %s", i, tc.path, r.header.Get("Allow"), m)
			}
		}
		if allow["PUT"] {
			t.Errorf("case %d PUT %s: Allow %q lists PUT", i, tc.path, r.header.Get("Allow"))
		}
	}
	if r := c.do("GET", piPath+pi["id"].(string)+"/", nil); r.status != http.StatusOK {
		t.Errorf("GET after PUT: status %d", r.status)
	}

	// A read client is refused a write (any method that is not GET, HEAD
	// or OPTIONS) before it learns that the path does not take it, as
	// Django REST Framework checks permissions before it dispatches; a
	// safe method the path does not take is still the 405.
	reader := e.newClient(c.customerID, "read")
	item := piPath + pi["id"].(string) + "/"
	for _, tc := range []struct{ method, path string }{
		{"PUT", item}, {"POST", item}, {"PUT", piPath}, {"DELETE", piPath}, {"PATCH", piPath + "list/"},
		{"TRACE", piPath}, {"FOO", item},
	} {
		r := reader.do(tc.method, tc.path, nil)
		if r.status != http.StatusForbidden {
			t.Errorf("read client %s %s: status %d, want 403", tc.method, tc.path, r.status)
			continue
		}
		httpDetailOnly(t, "read client "+tc.method, r)
	}
	if r := reader.do("OPTIONS", item, nil); r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") == "" {
		t.Errorf("read client OPTIONS: status %d, Allow %q; want 405 with Allow", r.status, r.header.Get("Allow"))
	}
	if r := c.do("FOO", item, nil); r.status != http.StatusMethodNotAllowed {
		t.Errorf("write client FOO: status %d, want 405", r.status)
	}
}

func TestHTTPMalformedAndUnsupportedBodies(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("HTTP Body AB")
	f := c.fixtures()
	tenantItem := tenantPath + f.tenant["id"].(string) + "/"

	for i, raw := range []string{"{", `{"a":}`, `{"first_name": "x"`, `{"first_name": "x"} trailing`, ""} {
		for _, target := range []struct{ method, path string }{{"POST", tenantPath}, {"PATCH", tenantItem}} {
			r := c.do(target.method, target.path, raw)
			if raw == "" {
				// An empty body is not JSON either.
				if r.status != http.StatusBadRequest {
					t.Errorf("empty body %s %s: status %d, want 400", target.method, target.path, r.status)
				}
				continue
			}
			if r.status != http.StatusBadRequest {
				t.Errorf("malformed case %d %s %s: status %d, want 400", i, target.method, target.path, r.status)
				continue
			}
			httpDetailOnly(t, "malformed JSON", r)
		}
	}

	for _, target := range []struct{ method, path string }{{"POST", tenantPath}, {"PATCH", tenantItem}} {
		body := `{"first_name": "` + personal("Zyx-Http-Media-Name") + `"}`
		r := e.send(target.method, target.path, body, c.headers, "text/plain")
		if r.status != http.StatusUnsupportedMediaType {
			t.Errorf("text/plain %s: status %d, want 415", target.method, r.status)
		} else {
			httpDetailOnly(t, "415 text/plain", r)
		}
		r = e.send(target.method, target.path, body, c.headers, "")
		if r.status != http.StatusUnsupportedMediaType {
			t.Errorf("no Content-Type %s: status %d, want 415", target.method, r.status)
		} else {
			httpDetailOnly(t, "415 missing Content-Type", r)
		}
		r = e.send(target.method, target.path, body, c.headers, "application/json; charset=utf-8")
		if target.method == "POST" && r.status != http.StatusCreated {
			t.Errorf("application/json with charset POST: status %d, want 201", r.status)
		}
		if target.method == "PATCH" && r.status != http.StatusOK {
			t.Errorf("application/json with charset PATCH: status %d, want 200", r.status)
		}
	}
}

// TestHTTPUpdateOfNoObjectIsNotFound: an update of an object the
// customer does not have is the 404 whatever its body (malformed JSON, a
// body that is not an object, another media type, invalid fields, a body
// past its limit), as in Django REST Framework, which looks the object up
// before it reads the body; the same bodies to an object that exists keep
// their own answers.
func TestHTTPUpdateOfNoObjectIsNotFound(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("HTTP Missing AB")
	other := e.newCustomer("HTTP Missing Other AB")
	f := c.fixtures()
	existing := tenantPath + f.tenant["id"].(string) + "/"
	missing := tenantPath + "7a1f5e2c-0b4d-4c8e-9f3a-2d6b8e0c4a51/"
	// Another customer's object is no object of this one.
	foreign := tenantPath + other.fixtures().tenant["id"].(string) + "/"
	bodies := []struct {
		name, body, contentType string
		want                    int
	}{
		{"malformed", `{"first_name": "x"`, "application/json", http.StatusBadRequest},
		{"empty", "", "application/json", http.StatusBadRequest},
		{"array", `[]`, "application/json", http.StatusBadRequest},
		{"null", `null`, "application/json", http.StatusBadRequest},
		{"text/plain", `{"custom_id": "m-1"}`, "text/plain", http.StatusUnsupportedMediaType},
		{"unknown field", `{"no_such_field": 1}`, "application/json", http.StatusBadRequest},
		{"wrong type", `{"first_name": 5}`, "application/json", http.StatusBadRequest},
		{"missing reference", `{"organization": {"id": "0d9c4b7e-5a3f-4e21-8b6c-1f2e3d4c5b6a"}}`, "application/json", http.StatusBadRequest},
	}
	for _, b := range bodies {
		for _, path := range []string{missing, foreign} {
			r := e.send("PATCH", path, b.body, c.headers, b.contentType)
			if r.status != http.StatusNotFound {
				t.Errorf("%s body to no object: status %d, want 404", b.name, r.status)
				continue
			}
			if r.obj["detail"] == nil || len(r.obj) != 1 {
				t.Errorf("%s body to no object: want only detail, got keys %v", b.name, keys(r.obj))
			}
		}
		if r := e.send("PATCH", existing, b.body, c.headers, b.contentType); r.status != b.want {
			t.Errorf("%s body to an object: status %d, want %d", b.name, r.status, b.want)
		}
	}
	// A body past its limit, of any type, is a 404 too, as it is to a
	// malformed id; to an object that exists it keeps its own answer.
	over := httpBodyOfSize(1<<20 + 1)
	for _, ct := range []string{"application/json", "text/plain"} {
		for _, path := range []string{missing, foreign, tenantPath + "not-a-uuid/"} {
			if r := e.send("PATCH", path, over, c.headers, ct); r.status != http.StatusNotFound {
				t.Errorf("%s body past the limit to no object: status %d, want 404", ct, r.status)
			}
		}
	}
	if r := e.send("PATCH", existing, over, c.headers, "application/json"); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("body past the limit to an object: status %d, want 413", r.status)
	}
	if r := e.send("PATCH", existing, over, c.headers, "text/plain"); r.status != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain body past the limit to an object: status %d, want 415", r.status)
	}
}

// httpBodyOfSize returns a valid JSON object {"first_name": "xxx..."} of
// exactly n bytes.
func httpBodyOfSize(n int) []byte {
	const prefix, suffix = `{"first_name":"`, `"}`
	return []byte(prefix + strings.Repeat("x", n-len(prefix)-len(suffix)) + suffix)
}

func TestHTTPBodySizeLimit(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("HTTP Size AB")
	f := c.fixtures()
	tenantItem := tenantPath + f.tenant["id"].(string) + "/"
	const mib = 1 << 20

	over := httpBodyOfSize(mib + 1)
	under := httpBodyOfSize(mib - 1)
	for _, target := range []struct{ method, path string }{{"POST", tenantPath}, {"PATCH", tenantItem}} {
		r := e.send(target.method, target.path, over, c.headers, "application/json")
		if r.status != http.StatusRequestEntityTooLarge {
			t.Errorf("%s 1 MiB + 1: status %d, want 413", target.method, r.status)
		} else {
			httpDetailOnly(t, "413", r)
		}

		r = e.send(target.method, target.path, under, c.headers, "application/json")
		if r.status == http.StatusRequestEntityTooLarge {
			t.Errorf("%s 1 MiB - 1: status 413, want a validation answer", target.method)
		} else {
			errorKeys(t, r, "first_name")
		}

		// Without a Content-Length (chunked), the limit holds too.
		req, err := http.NewRequest(target.method, e.server.URL+target.path, io.MultiReader(bytes.NewReader(over)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		for k, v := range c.headers {
			req.Header.Set(k, v)
		}
		resp, err := checkedClient(t).Do(req)
		if err != nil {
			t.Fatalf("chunked %s: %v", target.method, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("chunked %s 1 MiB + 1: status %d, want 413", target.method, resp.StatusCode)
		}
	}
}

func TestHTTPRequestID(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("HTTP Request ID AB")
	f := c.fixtures()
	item := tenantPath + f.tenant["id"].(string) + "/"

	type req struct {
		name         string
		method, path string
		body         any
		auth         bool
		want         int
	}
	reqs := []req{
		{"200 get", "GET", item, nil, true, http.StatusOK},
		{"200 healthz", "GET", "/healthz", nil, false, http.StatusOK},
		{"201", "POST", orgPath, nil, true, http.StatusCreated},
		{"400", "POST", tenantPath, map[string]any{"first_name": ""}, true, http.StatusBadRequest},
		{"401", "GET", item, nil, false, http.StatusUnauthorized},
		{"404", "GET", tenantPath + "00000000-0000-4000-8000-000000000000/", nil, true, http.StatusNotFound},
		{"404 unknown path", "GET", "/no/such/path/", nil, false, http.StatusNotFound},
		{"405", "PUT", item, map[string]any{}, true, http.StatusMethodNotAllowed},
		{"308", "GET", strings.TrimSuffix(item, "/"), nil, true, http.StatusPermanentRedirect},
	}
	orgN := 0
	send := func(rq req, extra map[string]string) response {
		t.Helper()
		headers := map[string]string{}
		if rq.auth {
			headers = c.headers
		}
		body := rq.body
		if rq.name == "201" {
			orgN++
			body = map[string]any{"name": "HTTP Request ID Org " + strings.Repeat("I", orgN)}
		}
		r := e.send(rq.method, rq.path, body, httpWithHeaders(headers, extra), "application/json")
		if r.status != rq.want {
			t.Errorf("%s: status %d, want %d", rq.name, r.status, rq.want)
		}
		return r
	}

	generated := map[string]bool{}
	for _, rq := range reqs {
		// No incoming id: one is generated, a new one every time.
		for range 2 {
			r := send(rq, nil)
			id := r.header.Get("X-Request-ID")
			if id == "" {
				t.Errorf("%s: no X-Request-ID", rq.name)
				continue
			}
			if generated[id] {
				t.Errorf("%s: generated X-Request-ID repeated", rq.name)
			}
			generated[id] = true
		}

		// A valid incoming id is echoed.
		for _, valid := range []string{"req-123.abc", "Trace_42:x", strings.Repeat("a", 64)} {
			r := send(rq, map[string]string{"X-Request-ID": valid})
			if got := r.header.Get("X-Request-ID"); got != valid {
				t.Errorf("%s: valid incoming X-Request-ID %q answered as %q", rq.name, valid, got)
			}
			if rq.want == http.StatusInternalServerError && r.obj["request_id"] == valid {
				t.Errorf("%s: 500 body request_id is the caller's id, which is not a UUID", rq.name)
			}
		}

		// An invalid incoming id is replaced by a generated one.
		for j, invalid := range []string{strings.Repeat("a", 200), "req 123", "req\t123", "<script>", "a/b", "ä-id"} {
			r := send(rq, map[string]string{"X-Request-ID": invalid})
			got := r.header.Get("X-Request-ID")
			if got == "" || got == invalid {
				t.Errorf("%s: invalid incoming X-Request-ID #%d not replaced", rq.name, j)
				continue
			}
			if generated[got] {
				t.Errorf("%s: generated X-Request-ID repeated", rq.name)
			}
			generated[got] = true
		}
	}

	// Two ids, even valid ones, are no id: which one a proxy in front
	// logged is anyone's guess. (dialRaw writes each value after its name:
	// these are two fields.)
	for _, rq := range []req{reqs[0], reqs[1], reqs[6]} {
		headers := map[string]string{"X-Request-ID": "first-id\r\nX-Request-ID: second-id"}
		if rq.auth {
			headers = httpWithHeaders(c.headers, headers)
		}
		r := e.rawRequest(rq.method, rq.path, headers, "")
		if got := r.header.Get("X-Request-ID"); r.status != rq.want || got == "" || got == "first-id" || got == "second-id" || generated[got] {
			t.Errorf("%s: two incoming X-Request-IDs: status %d, answered as %q; want %d and a new generated id", rq.name, r.status, got, rq.want)
		}
	}
}

func TestHTTPServiceEndpoints(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("HTTP Service AB")
	f := c.fixtures()
	pi := c.create(piPath, map[string]any{"tenant": ref(f.tenant), "first_name": personal("Metrics-Probe-Firstname")})
	id := pi["id"].(string)
	if r := c.do("GET", piPath+id+"/", nil); r.status != http.StatusOK {
		t.Fatalf("GET object: status %d", r.status)
	}
	// A query string on a route that takes none is refused, never ignored.
	if r := c.do("GET", piPath+id+"/?_slim=true", nil); r.status != http.StatusBadRequest {
		t.Fatalf("GET object with a query string: status %d, want 400", r.status)
	}
	if r := c.do("GET", piPath+"00000000-0000-4000-8000-000000000001/", nil); r.status != http.StatusNotFound {
		t.Fatalf("GET unknown object: status %d", r.status)
	}
	if r := c.do("GET", piPath+"not-a-uuid/", nil); r.status != http.StatusNotFound {
		t.Fatalf("GET malformed pk: status %d", r.status)
	}

	for _, p := range []string{"/healthz", "/readyz"} {
		r := e.send("GET", p, nil, nil, "")
		if r.status != http.StatusOK {
			t.Errorf("%s: status %d, want 200", p, r.status)
		}
	}

	r := e.send("GET", "/metrics", nil, nil, "")
	if r.status != http.StatusOK {
		t.Fatalf("/metrics: status %d, want 200", r.status)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("/metrics: Content-Type %q, want Prometheus text format", ct)
	}
	text := string(r.raw)
	if !strings.Contains(text, "# TYPE accounts_http_requests_total counter") {
		t.Errorf("/metrics lacks the TYPE line of accounts_http_requests_total")
	}
	wantRoute := `route="GET /accounts/users/customer/protectedidentity/{pk}/"`
	found200, found404 := false, false
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "accounts_http_requests_total{") {
			continue
		}
		if !strings.Contains(line, "status=") {
			t.Errorf("/metrics line without a status label: %q", line)
		}
		if strings.Contains(line, wantRoute) && strings.Contains(line, `status="200"`) {
			found200 = true
		}
		if strings.Contains(line, wantRoute) && strings.Contains(line, `status="404"`) {
			found404 = true
		}
	}
	if !found200 || !found404 {
		t.Errorf("/metrics lacks accounts_http_requests_total with %s and status 200 (found %v) / 404 (found %v)", wantRoute, found200, found404)
	}
	for name, v := range map[string]string{
		"object id": id, "tenant id": f.tenant["id"].(string), "customer id": c.customerID, "client id": c.id,
		"unknown object id": "00000000-0000-4000-8000-000000000001", "malformed pk": "not-a-uuid",
		"query string": "_slim",
	} {
		if strings.Contains(text, v) {
			t.Errorf("/metrics contains the %s of a request", name)
		}
	}
	if strings.Contains(text, "Metrics-Probe-Firstname") {
		t.Errorf("/metrics contains a personal value")
	}
}

// /metrics, which needs no credentials, tells no answer's size: no
// network byte counters, and the runtime's and the process's byte figures
// in whole MiB, their allocation counts in whole 1,024s. Exact ones, read
// just before and after a GET, would give the length of its values.
func TestHTTPMetricsAreCoarse(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("HTTP Metrics AB")
	f := c.fixtures()
	pi := c.create(piPath, map[string]any{"tenant": ref(f.tenant), "first_name": personal("Metrics-Coarse-Firstname")})
	if r := c.do("GET", piPath+pi["id"].(string)+"/", nil); r.status != http.StatusOK {
		t.Fatalf("GET object: status %d", r.status)
	}
	// What a list ordered in memory would hold of one person's values,
	// read while it runs.
	const held = 1009
	if err := e.app.Limits.HoldListMemory(held); err != nil {
		t.Fatal(err)
	}
	defer e.app.Limits.ReleaseListMemory(held)
	r := e.send("GET", "/metrics", nil, nil, "")
	if r.status != http.StatusOK {
		t.Fatalf("/metrics: status %d, want 200", r.status)
	}
	bytesSeen, countsSeen, listMemorySeen := 0, 0, false
	for _, line := range strings.Split(string(r.raw), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		series, value, ok := strings.Cut(line, " ")
		if !ok {
			t.Fatalf("/metrics: a line without a value: %q", line)
		}
		name, _, _ := strings.Cut(series, "{")
		if strings.HasPrefix(name, "process_network_") {
			t.Errorf("/metrics serves %s", name)
			continue
		}
		granule := 0.0
		switch {
		case strings.HasSuffix(name, "_bytes") || strings.HasSuffix(name, "_bytes_total"):
			granule, bytesSeen = 1<<20, bytesSeen+1
			if name == "accounts_list_memory_bytes" {
				listMemorySeen = true
			}
		case name == "go_memstats_mallocs_total" || name == "go_memstats_frees_total" || name == "go_memstats_heap_objects":
			granule, countsSeen = 1<<10, countsSeen+1
		default:
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("/metrics: %s has the value %q", name, value)
		}
		if math.Mod(v, granule) != 0 {
			t.Errorf("/metrics: %s is %v, not a whole multiple of %v", name, v, granule)
		}
	}
	if bytesSeen < 6 || countsSeen != 3 || !listMemorySeen {
		t.Errorf("/metrics: %d byte figures (list memory among them: %v) and %d object counts; want at least 6, the list memory, and 3",
			bytesSeen, listMemorySeen, countsSeen)
	}
}

func TestHTTPUnknownPathIsJSON404(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("HTTP 404 AB")
	for _, p := range []string{"/no/such/path/", "/nope", "/accounts/users/customer/", "/accounts/users/customer/nosuchresource/"} {
		for _, headers := range []map[string]string{nil, c.headers} {
			r := e.send("GET", p, nil, headers, "")
			if r.status != http.StatusNotFound {
				t.Errorf("GET %s (auth %v): status %d, want 404", p, headers != nil, r.status)
				continue
			}
			httpDetailOnly(t, "404 "+p, r)
		}
	}
	f := c.fixtures()
	pi := c.create(piPath, map[string]any{"tenant": ref(f.tenant)})
	id := pi["id"].(string)
	// A path below an object's path is no route of the contract, even
	// though it starts like one.
	for _, p := range []string{piPath + "not-a-uuid/", piPath + "00000000-0000-4000-8000-000000000000/",
		piPath + "a/b/", piPath + id + "/extra/", piPath + id + "/" + id + "/", piPath + "list/extra/"} {
		r := c.do("GET", p, nil)
		if r.status != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, r.status)
			continue
		}
		httpDetailOnly(t, "404 "+p, r)
	}
}

// No answer of the API may be kept by a cache: each holds personal data or
// says something of it, and the credentials travel in headers a shared
// cache does not know for credentials. Every answer of an API route —
// success, error, refusal — says Cache-Control: no-store.
func TestAnswersAreNotCached(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("No Store AB")
	tenant := c.create(tenantPath, map[string]any{"first_name": personal("Nostore")})
	for label, r := range map[string]response{
		"get":          c.do("GET", tenantPath+tenant["id"].(string)+"/", nil),
		"list":         c.do("GET", tenantPath+"?_statistics=true", nil),
		"create":       c.do("POST", orgPath, map[string]any{"name": "No Store Org"}),
		"invalid":      c.do("POST", orgPath, map[string]any{"name": ""}),
		"not found":    c.do("GET", tenantPath+"00000000-0000-4000-8000-000000000000/", nil),
		"no headers":   e.send("GET", tenantPath, nil, nil, ""),
		"bad query":    c.do("GET", tenantPath+"?nosuch=1", nil),
		"method":       c.do("PUT", tenantPath+tenant["id"].(string)+"/", nil),
		"jsonl stream": c.do("GET", tenantPath+"?_jsonl=true", nil),
	} {
		if got := r.header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("%s (status %d): Cache-Control %q, want no-store", label, r.status, got)
		}
	}
}
