package apitest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"accounts/internal/auth"

	"github.com/google/uuid"
)

// The seven authentication headers of the contract's section 2, in order.
var authHeaderNames = []string{
	"X-PIGELLO-CUSTOMER-ID",
	"X-PIGELLO-APPLICATION-ID",
	"X-PIGELLO-SERVICE-ID",
	"X-PIGELLO-SERVICE-VERSION-ID",
	"X-PIGELLO-CLIENT-CT",
	"X-PIGELLO-CLIENT-ENTITY",
	"X-PIGELLO-CLIENT-SECRET",
}

const (
	authBody401 = "Invalid or missing credentials."
	authBody403 = "You do not have permission to perform this action."
)

// authCopyHeaders returns a copy of a client's headers.
func authCopyHeaders(c *client) map[string]string {
	h := make(map[string]string, len(c.headers))
	for k, v := range c.headers {
		h[k] = v
	}
	return h
}

// auth401 collects every 401 body of a test and checks that they are all the
// same bytes, and the contract's body.
type auth401 struct {
	t     *testing.T
	first []byte
	n     int
}

func (a *auth401) check(name string, r response) {
	a.t.Helper()
	if r.status != http.StatusUnauthorized {
		a.t.Errorf("%s: status %d, want 401", name, r.status)
		return
	}
	a.n++
	var body map[string]any
	if err := json.Unmarshal(r.raw, &body); err != nil {
		a.t.Errorf("%s: 401 body is not a JSON object", name)
	} else if !reflect.DeepEqual(body, map[string]any{"detail": authBody401}) {
		a.t.Errorf("%s: 401 body is not the contract's body (keys %v)", name, keys(body))
	}
	if a.first == nil {
		a.first = append([]byte(nil), r.raw...)
		return
	}
	if !bytes.Equal(a.first, r.raw) {
		a.t.Errorf("%s: 401 body differs byte-for-byte from the first 401 body", name)
	}
}

func TestAuthValidHeadersWork(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Auth Valid AB")
	for _, name := range authHeaderNames {
		if c.headers[name] == "" {
			t.Fatalf("client create gave no value for header %s", name)
		}
	}
	if len(c.headers) != len(authHeaderNames) {
		t.Errorf("client create gave %d headers, want %d", len(c.headers), len(authHeaderNames))
	}
	org := c.create(orgPath, map[string]any{"name": "Auth Valid Org"})
	r := c.do("GET", orgPath+org["id"].(string)+"/", nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET with valid headers: status %d, want 200", r.status)
	}
	if !reflect.DeepEqual(r.obj, org) {
		t.Errorf("GET returned a different object than the create")
	}
	tenant := c.create(tenantPath, map[string]any{"first_name": personal("Authvalid-Tova")})
	if r := c.do("PATCH", tenantPath+tenant["id"].(string)+"/", map[string]any{"custom_id": "auth-valid"}); r.status != http.StatusOK {
		t.Errorf("PATCH with valid headers: status %d, want 200", r.status)
	}
	if r := c.do("DELETE", tenantPath+tenant["id"].(string)+"/", nil); r.status != http.StatusNoContent {
		t.Errorf("DELETE with valid headers: status %d, want 204", r.status)
	}
}

// A UUID header in upper case is the same UUID: each of the five, and all
// at once, authenticate the client as in lower case. The content type and
// the secret are compared exactly.
func TestAuthUUIDHeadersIgnoreCase(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Auth Case AB")
	org := c.create(orgPath, map[string]any{"name": "Auth Case Org"})
	get := func(headers map[string]string) int {
		return e.send("GET", orgPath+org["id"].(string)+"/", nil, headers, "").status
	}
	uuids := []string{"X-PIGELLO-CUSTOMER-ID", "X-PIGELLO-APPLICATION-ID", "X-PIGELLO-SERVICE-ID",
		"X-PIGELLO-SERVICE-VERSION-ID", "X-PIGELLO-CLIENT-ENTITY"}
	all := httpWithHeaders(c.headers, nil)
	for _, name := range uuids {
		if status := get(httpWithHeaders(c.headers, map[string]string{name: strings.ToUpper(c.headers[name])})); status != http.StatusOK {
			t.Errorf("%s in upper case: status %d, want 200", name, status)
		}
		all[name] = strings.ToUpper(c.headers[name])
	}
	if status := get(all); status != http.StatusOK {
		t.Errorf("every UUID header in upper case: status %d, want 200", status)
	}
	for _, name := range []string{"X-PIGELLO-CLIENT-CT", "X-PIGELLO-CLIENT-SECRET"} {
		if status := get(httpWithHeaders(c.headers, map[string]string{name: strings.ToUpper(c.headers[name])})); status != http.StatusUnauthorized {
			t.Errorf("%s in upper case: status %d, want 401", name, status)
		}
	}
}

func TestAuthEachHeaderRequired(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Auth Headers AB")
	other := e.newClient(c.customerID, "read_write") // a second, active client of the same customer
	org := c.create(orgPath, map[string]any{"name": "Auth Headers Org"})
	objPath := orgPath + org["id"].(string) + "/"
	v401 := &auth401{t: t}

	type variant struct {
		label string
		value *string // nil: leave the header out
	}
	str := func(s string) *string { return &s }
	for _, name := range authHeaderNames {
		variants := []variant{
			{"missing", nil},
			{"empty", str("")},
			{"malformed", str("not-a-uuid")},
		}
		switch name {
		case "X-PIGELLO-CLIENT-CT", "X-PIGELLO-CLIENT-SECRET":
			variants = append(variants, variant{"wrong", str("x")})
		default:
			variants = append(variants, variant{"wrong", str(uuid.NewString())})
		}
		if ov := other.headers[name]; ov != c.headers[name] {
			// The value of another active client of the same customer.
			variants = append(variants, variant{"other client's", str(ov)})
		}
		for _, v := range variants {
			h := authCopyHeaders(c)
			if v.value == nil {
				delete(h, name)
			} else {
				h[name] = *v.value
			}
			label := v.label + " " + name
			v401.check("GET, "+label, e.send("GET", objPath, nil, h, ""))
			v401.check("POST, "+label, e.send("POST", orgPath, map[string]any{"name": "Auth Intruder Org"}, h, "application/json"))
			v401.check("PATCH, "+label, e.send("PATCH", objPath, map[string]any{"custom_id": "intruder"}, h, "application/json"))
			v401.check("DELETE, "+label, e.send("DELETE", objPath, nil, h, ""))
		}
	}
	// No headers at all.
	v401.check("GET, no headers", e.send("GET", objPath, nil, nil, ""))
	if v401.n == 0 {
		t.Fatal("no 401 was seen")
	}

	// Nothing was changed by the refused requests.
	if r := c.do("GET", objPath, nil); r.status != http.StatusOK || !reflect.DeepEqual(r.obj, org) {
		t.Errorf("organization changed or gone after refused requests: status %d", r.status)
	}
	// The POST was never carried out: the (unique) name is still free.
	c.create(orgPath, map[string]any{"name": "Auth Intruder Org"})
	// Both clients still work.
	if r := other.do("GET", objPath, nil); r.status != http.StatusOK {
		t.Errorf("second client: status %d, want 200", r.status)
	}
}

func TestAuthOtherCustomerID(t *testing.T) {
	e := newEnv(t)
	a := e.newCustomer("Auth Cust A AB")
	b := e.newCustomer("Auth Cust B AB")
	orgA := a.create(orgPath, map[string]any{"name": "Auth Cust A Org"})
	orgB := b.create(orgPath, map[string]any{"name": "Auth Cust B Org"})
	v401 := &auth401{t: t}

	h := authCopyHeaders(a)
	h["X-PIGELLO-CUSTOMER-ID"] = b.customerID
	v401.check("A's headers with B's customer, GET A's object", e.send("GET", orgPath+orgA["id"].(string)+"/", nil, h, ""))
	v401.check("A's headers with B's customer, GET B's object", e.send("GET", orgPath+orgB["id"].(string)+"/", nil, h, ""))
	v401.check("A's headers with B's customer, POST", e.send("POST", orgPath, map[string]any{"name": "Auth Cross Org"}, h, "application/json"))
	v401.check("A's headers with B's customer, DELETE B's object", e.send("DELETE", orgPath+orgB["id"].(string)+"/", nil, h, ""))

	h = authCopyHeaders(b)
	h["X-PIGELLO-CUSTOMER-ID"] = a.customerID
	v401.check("B's headers with A's customer, GET A's object", e.send("GET", orgPath+orgA["id"].(string)+"/", nil, h, ""))

	// Nothing was created or deleted for either customer.
	a.create(orgPath, map[string]any{"name": "Auth Cross Org"})
	b.create(orgPath, map[string]any{"name": "Auth Cross Org"})
	if r := b.do("GET", orgPath+orgB["id"].(string)+"/", nil); r.status != http.StatusOK {
		t.Errorf("B's object after refused DELETE: status %d, want 200", r.status)
	}
}

func TestAuthRevokedClient(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Auth Revoke AB")
	extra := e.newClient(c.customerID, "read_write")
	org := c.create(orgPath, map[string]any{"name": "Auth Revoke Org"})
	objPath := orgPath + org["id"].(string) + "/"
	if r := extra.do("GET", objPath, nil); r.status != http.StatusOK {
		t.Fatalf("before revoke: status %d, want 200", r.status)
	}
	if _, _, err := e.run("client", "revoke", "--id", extra.id); err != nil {
		t.Fatalf("client revoke: %v", err)
	}
	extra.awaitRefused(objPath, time.Now())
	v401 := &auth401{t: t}
	v401.check("revoked GET", extra.do("GET", objPath, nil))
	v401.check("revoked POST", extra.do("POST", orgPath, map[string]any{"name": "Auth Revoked Org"}))
	v401.check("revoked PATCH", extra.do("PATCH", objPath, map[string]any{"custom_id": "revoked"}))
	v401.check("revoked DELETE", extra.do("DELETE", objPath, nil))
	// A 401 for a revoked client is the same bytes as for a missing header.
	h := authCopyHeaders(c)
	delete(h, "X-PIGELLO-CLIENT-SECRET")
	v401.check("missing secret", e.send("GET", objPath, nil, h, ""))

	// The other client of the customer is unaffected, and nothing changed.
	if r := c.do("GET", objPath, nil); r.status != http.StatusOK || !reflect.DeepEqual(r.obj, org) {
		t.Errorf("after revoke, the unrevoked client: status %d or object changed", r.status)
	}
	c.create(orgPath, map[string]any{"name": "Auth Revoked Org"})
}

func TestAuthReadClientCannotWrite(t *testing.T) {
	e := newEnv(t)
	rw := e.newCustomer("Auth Read AB")
	ro := e.newClient(rw.customerID, "read")
	f := rw.fixtures()
	pi := rw.create(piPath, map[string]any{"tenant": ref(f.tenant), "first_name": personal("Authread-Rut")})
	piObj := piPath + pi["id"].(string) + "/"
	orgObj := orgPath + f.org["id"].(string) + "/"

	// Reads work.
	if r := ro.do("GET", piObj, nil); r.status != http.StatusOK || !reflect.DeepEqual(r.obj, pi) {
		t.Fatalf("read client GET: status %d or a different object", r.status)
	}
	if r := ro.do("GET", orgObj, nil); r.status != http.StatusOK {
		t.Fatalf("read client GET organization: status %d", r.status)
	}

	check403 := func(name string, r response) {
		t.Helper()
		if r.status != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", name, r.status)
			return
		}
		var body map[string]any
		if err := json.Unmarshal(r.raw, &body); err != nil || !reflect.DeepEqual(body, map[string]any{"detail": authBody403}) {
			t.Errorf("%s: 403 body is not the contract's body (keys %v)", name, keys(body))
		}
	}
	check403("POST organization", ro.do("POST", orgPath, map[string]any{"name": "Auth Read Forbidden Org"}))
	check403("POST tenant", ro.do("POST", tenantPath, map[string]any{"first_name": personal("Authread-Forbidden")}))
	check403("PATCH identity", ro.do("PATCH", piObj, map[string]any{"first_name": personal("Authread-Changed")}))
	check403("PATCH organization", ro.do("PATCH", orgObj, map[string]any{"custom_id": "read-changed"}))
	check403("DELETE identity", ro.do("DELETE", piObj, nil))
	check403("DELETE organization", ro.do("DELETE", orgObj, nil))
	check403("DELETE tenant", ro.do("DELETE", tenantPath+f.tenant["id"].(string)+"/", nil))

	// A read client with a wrong secret is unauthenticated, not forbidden.
	h := authCopyHeaders(ro)
	h["X-PIGELLO-CLIENT-SECRET"] = "x"
	v401 := &auth401{t: t}
	v401.check("read client, wrong secret, POST", e.send("POST", orgPath, map[string]any{"name": "Auth Read Forbidden Org"}, h, "application/json"))

	// Nothing changed.
	if r := rw.do("GET", piObj, nil); r.status != http.StatusOK || !reflect.DeepEqual(r.obj, pi) {
		t.Errorf("identity changed or gone after refused writes: status %d", r.status)
	}
	if r := rw.do("GET", orgObj, nil); r.status != http.StatusOK || !reflect.DeepEqual(r.obj, f.org) {
		t.Errorf("organization changed or gone after refused writes: status %d", r.status)
	}
	if r := rw.do("GET", tenantPath+f.tenant["id"].(string)+"/", nil); r.status != http.StatusOK || !reflect.DeepEqual(r.obj, f.tenant) {
		t.Errorf("tenant changed or gone after refused writes: status %d", r.status)
	}
	// The refused POST created nothing: the unique name is still free.
	rw.create(orgPath, map[string]any{"name": "Auth Read Forbidden Org"})
}

func TestAuthSecretInQueryString(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Auth Query AB")
	org := c.create(orgPath, map[string]any{"name": "Auth Query Org"})
	objPath := orgPath + org["id"].(string) + "/"
	secret := c.headers["X-PIGELLO-CLIENT-SECRET"]
	h := authCopyHeaders(c)
	delete(h, "X-PIGELLO-CLIENT-SECRET")
	v401 := &auth401{t: t}
	for i, param := range []string{"X-PIGELLO-CLIENT-SECRET", "x-pigello-client-secret", "client_secret", "secret"} {
		q := "?" + url.Values{param: {secret}}.Encode()
		r := e.send("GET", objPath+q, nil, h, "")
		if r.status != http.StatusUnauthorized {
			t.Errorf("query parameter case %d: status %d, want 401", i, r.status)
			continue
		}
		v401.check("secret in query", r)
	}
	// Every credential in the query string, none in headers.
	q := url.Values{}
	for k, v := range c.headers {
		q.Set(k, v)
	}
	v401.check("all credentials in query", e.send("GET", objPath+"?"+q.Encode(), nil, nil, ""))
	// Sanity: with the header the same request works.
	if r := c.do("GET", objPath, nil); r.status != http.StatusOK {
		t.Errorf("with the secret header: status %d, want 200", r.status)
	}
}

func TestAuthPublicEndpoints(t *testing.T) {
	e := newEnv(t)
	e.newCustomer("Auth Public AB")
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		r := e.send("GET", p, nil, nil, "")
		if r.status != http.StatusOK {
			t.Errorf("GET %s without headers: status %d, want 200", p, r.status)
		}
	}
	// Wrong credentials on a public endpoint don't make it fail either.
	h := map[string]string{"X-PIGELLO-CLIENT-SECRET": "x"}
	if r := e.send("GET", "/healthz", nil, h, ""); r.status != http.StatusOK {
		t.Errorf("GET /healthz with a stray header: status %d, want 200", r.status)
	}
}

// awaitRefused sends GET path as c until it is refused with 401, and fails
// the test when a request sent auth.ClientCacheTTL or more after since
// still got through: the bound within which a client revoked (or deleted
// with its customer) at since stops being served from the cache of
// authenticated clients.
func (c *client) awaitRefused(path string, since time.Time) {
	c.e.t.Helper()
	for {
		sent := time.Since(since)
		r := c.do("GET", path, nil)
		if r.status == http.StatusUnauthorized {
			return
		}
		if sent >= auth.ClientCacheTTL {
			c.e.t.Fatalf("a request sent %v after the revocation got status %d; the bound is %v", sent, r.status, auth.ClientCacheTTL)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
