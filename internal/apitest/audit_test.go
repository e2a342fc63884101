package apitest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"accounts/internal/cli"
	"accounts/internal/config"

	"github.com/google/uuid"
)

// auditLine is one line of `accounts audit list --json`.
type auditLine struct {
	Position   int64    `json:"position"`
	Time       string   `json:"time"`
	CustomerID string   `json:"customer_id"`
	ClientID   string   `json:"client_id"`
	RequestID  string   `json:"request_id"`
	Action     string   `json:"action"`
	Resource   string   `json:"resource"`
	ObjectIDs  []string `json:"object_ids"`
	Fields     []string `json:"fields"`
	Hash       string   `json:"hash"`
}

// describe names an entry for failure messages: ids and field names only.
func (l auditLine) describe() string {
	return fmt.Sprintf("#%d %s %s ids %v fields %v", l.Position, l.Action, l.Resource, l.ObjectIDs, l.Fields)
}

var auditLineKeys = []string{"position", "time", "customer_id", "client_id", "request_id", "action", "resource",
	"object_ids", "fields", "hash"}

// The personal fields of each audited resource, as the contract lists them.
var (
	auditTenantPersonal  = []string{"first_name", "last_name", "corporate_name", "ssn", "birth_date", "email", "phone_number"}
	auditPIPersonal      = []string{"first_name", "last_name", "email", "phone_number", "ssn", "birth_date"}
	auditAddressPersonal = []string{"street", "street_number", "postal_code", "city", "care_of", "attention", "latitude", "longitude"}
)

// auditEntries runs `audit list --customer ID --json` (plus extra flags) and
// decodes its JSON Lines, checking each line's keys and the chain's shape.
func auditEntries(t *testing.T, e *env, customerID string, extra ...string) []auditLine {
	t.Helper()
	args := append([]string{"audit", "list", "--customer", customerID, "--json"}, extra...)
	out, _, err := e.run(args...)
	if err != nil {
		t.Fatalf("audit list: %v", err)
	}
	var lines []auditLine
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("audit list --json: line %d is not a JSON object", len(lines)+1)
		}
		got := keys(nil)
		for k := range m {
			got = append(got, k)
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(auditLineKeys))
		if !slices.Equal(got, want) {
			t.Errorf("audit list --json: line %d has keys %v, want %v", len(lines)+1, got, want)
		}
		var l auditLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("audit list --json: line %d: %v", len(lines)+1, err)
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for i, l := range lines {
		if l.CustomerID != customerID {
			t.Errorf("entry %s: customer_id is not the customer listed", l.describe())
		}
		if len(extra) == 0 && l.Position != int64(i+1) {
			t.Errorf("entry %d of the full list has position %d", i+1, l.Position)
		}
		if _, err := time.Parse(time.RFC3339Nano, l.Time); err != nil {
			t.Errorf("entry %s: time is not RFC 3339", l.describe())
		}
		if len(l.Hash) != 64 || strings.Trim(l.Hash, "0123456789abcdef") != "" {
			t.Errorf("entry %s: hash is not 64 hex digits", l.describe())
		}
	}
	return lines
}

// auditReqID returns a response's X-Request-ID, which must be set.
func auditReqID(t *testing.T, label string, r response) string {
	t.Helper()
	id := r.header.Get("X-Request-ID")
	if id == "" {
		t.Fatalf("%s: no X-Request-ID header", label)
	}
	return id
}

// auditWant is one expected entry of a request.
type auditWant struct {
	action   string
	resource string
	ids      []string
	fields   []string
	client   *client
}

func (w auditWant) describe() string {
	return fmt.Sprintf("%s %s ids %v fields %v", w.action, w.resource, w.ids, w.fields)
}

func (w auditWant) matches(l auditLine) bool {
	return l.Action == w.action && l.Resource == w.resource && l.ClientID == w.client.id &&
		auditSameSet(l.ObjectIDs, w.ids) && len(l.ObjectIDs) == len(w.ids) &&
		auditSameSet(l.Fields, w.fields) && len(l.Fields) == len(w.fields)
}

// auditSameSet reports whether a and b hold the same strings (duplicates
// aside).
func auditSameSet(a, b []string) bool {
	as, bs := slices.Clone(a), slices.Clone(b)
	slices.Sort(as)
	slices.Sort(bs)
	return slices.Equal(slices.Compact(as), slices.Compact(bs))
}

// auditExpect collects, per request, the entries it must have made.
type auditExpect struct {
	t      *testing.T
	labels map[string]string
	wants  map[string][]auditWant
	order  []string
}

func newAuditExpect(t *testing.T) *auditExpect {
	return &auditExpect{t: t, labels: map[string]string{}, wants: map[string][]auditWant{}}
}

// add records a request that must have answered status and made exactly
// the wanted entries (none when wants is empty). It returns the response.
func (x *auditExpect) add(label string, r response, status int, wants ...auditWant) response {
	x.t.Helper()
	if r.status != status {
		x.t.Fatalf("%s: status %d, want %d (error keys %v)", label, r.status, status, keys(r.obj))
	}
	id := auditReqID(x.t, label, r)
	if _, dup := x.labels[id]; dup {
		x.t.Fatalf("%s: X-Request-ID repeats an earlier request's", label)
	}
	x.labels[id] = label
	x.wants[id] = wants
	x.order = append(x.order, id)
	return r
}

// check compares the customer's entries with the expectations: every
// request made exactly its entries, and no entry belongs to no request.
func (x *auditExpect) check(entries []auditLine) {
	t := x.t
	t.Helper()
	byReq := map[string][]auditLine{}
	for _, l := range entries {
		if _, ok := x.labels[l.RequestID]; !ok {
			t.Errorf("entry %s: request_id is none of the test's requests' X-Request-ID", l.describe())
			continue
		}
		byReq[l.RequestID] = append(byReq[l.RequestID], l)
	}
	for _, id := range x.order {
		label, wants, got := x.labels[id], x.wants[id], byReq[id]
		used := make([]bool, len(got))
		for _, w := range wants {
			found := false
			for i, l := range got {
				if !used[i] && w.matches(l) {
					used[i], found = true, true
					break
				}
			}
			if !found {
				t.Errorf("%s: no entry %s by client %s", label, w.describe(), w.client.id)
			}
		}
		for i, l := range got {
			if !used[i] {
				t.Errorf("%s: unexpected entry %s (client %s)", label, l.describe(), l.ClientID)
			}
		}
	}
}

func auditID(obj map[string]any) string { id, _ := obj["id"].(string); return id }

func auditObjPath(path string, obj map[string]any) string { return path + auditID(obj) + "/" }

func auditSSNs(t *testing.T) []ssnVector {
	t.Helper()
	f := loadPersonnummer(t)
	// Only distinct canonical numbers: each test value must be told apart.
	var out []ssnVector
	seen := map[string]bool{}
	for _, s := range f.Valid {
		if !seen[s.Canonical] {
			seen[s.Canonical] = true
			out = append(out, s)
		}
	}
	if len(out) < 6 {
		t.Fatalf("personnummer test vectors: only %d distinct valid numbers", len(out))
	}
	for _, s := range out {
		personal(s.Input, s.Canonical)
	}
	return out
}

// create POSTs body to path, which must create it, and expects one create
// entry of resource ("" for none) listing fields.
func (x *auditExpect) create(label string, c *client, path, resource string, body map[string]any, fields ...string) map[string]any {
	x.t.Helper()
	r := c.do("POST", path, body)
	if r.status != http.StatusCreated {
		x.t.Fatalf("%s: status %d, want 201 (error keys %v)", label, r.status, keys(r.obj))
	}
	var wants []auditWant
	if resource != "" {
		wants = append(wants, auditWant{action: "create", resource: resource, ids: []string{auditID(r.obj)}, fields: fields, client: c})
	}
	x.add(label, r, http.StatusCreated, wants...)
	return r.obj
}

func TestAuditOneEntryPerOperation(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Audit Ops AB")
	reader := e.newClient(c.customerID, "read")
	other := e.newCustomer("Audit Ops Other AB")
	ssns := auditSSNs(t)
	x := newAuditExpect(t)
	w := func(action, resource string, client *client, obj map[string]any, fields ...string) auditWant {
		return auditWant{action: action, resource: resource, ids: []string{auditID(obj)}, fields: fields, client: client}
	}

	// Organizations hold no personal data: nothing of theirs is audited.
	org := x.create("create organization", c, orgPath, "", map[string]any{"name": "Audit Ops Org"})
	x.add("get organization", c.do("GET", auditObjPath(orgPath, org), nil), 200)
	x.add("patch organization", c.do("PATCH", auditObjPath(orgPath, org), map[string]any{"custom_id": "org-1"}), 200)
	x.add("list organizations", c.do("GET", orgPath, nil), 200)

	// Address.
	addr := x.create("create address", c, addressPath, "Address", map[string]any{
		"street": personal("Auditvägen"), "postal_code": personal("417 55"), "city": personal("Auditköping"),
		"country": "Sverige", "organization": ref(org),
	}, "street", "postal_code", "city")
	x.create("create address with coordinates", c, addressPath, "Address", map[string]any{
		"street": personal("Auditgränd"), "postal_code": personal("417 56"), "city": personal("Auditby"),
		"country": "Sverige", "latitude": 57.7, "custom_id": "addr-2",
	}, "street", "postal_code", "city", "latitude")
	x.add("get address", c.do("GET", auditObjPath(addressPath, addr), nil), 200,
		w("read", "Address", c, addr, "street", "postal_code", "city"))
	x.add("patch address", c.do("PATCH", auditObjPath(addressPath, addr), map[string]any{
		"care_of": personal("c/o Auditsson"), "country": "Norge",
	}), 200, w("update", "Address", c, addr, "street", "postal_code", "city", "care_of"))
	x.add("get address by the read client", reader.do("GET", auditObjPath(addressPath, addr), nil), 200,
		w("read", "Address", reader, addr, "street", "postal_code", "city", "care_of"))

	// Tenant.
	tenant := x.create("create tenant", c, tenantPath, "Tenant", map[string]any{
		"first_name": personal("Auditfirst-Ops"), "email": personal("audit.ops@example.se"), "ssn": ssns[0].Input,
		"custom_id": "t-1", "organization": ref(org), "current_registered_address": ref(addr),
	}, "first_name", "email", "ssn")
	tPath := auditObjPath(tenantPath, tenant)
	x.add("get tenant", c.do("GET", tPath, nil), 200, w("read", "Tenant", c, tenant, "first_name", "email", "ssn"))
	x.add("get tenant by the read client", reader.do("GET", tPath, nil), 200,
		w("read", "Tenant", reader, tenant, "first_name", "email", "ssn"))
	x.add("patch tenant (one field set, one cleared)", c.do("PATCH", tPath, map[string]any{
		"last_name": personal("Auditlast-Ops"), "email": nil, "custom_id": "t-1b",
	}), 200, w("update", "Tenant", c, tenant, "first_name", "last_name", "email", "ssn"))
	x.add("patch tenant (no personal field)", c.do("PATCH", tPath, map[string]any{"custom_id": "t-1c"}), 200,
		w("update", "Tenant", c, tenant, "first_name", "last_name", "ssn"))
	x.add("get tenant after updates", c.do("GET", tPath, nil), 200,
		w("read", "Tenant", c, tenant, "first_name", "last_name", "ssn"))
	// A request id the client sends is the one recorded when it is a UUID
	// (any other is echoed, but can't be made to reach the trail).
	const clientRequestID = "3b9d7c2e-5f1a-4e8b-9c6d-2a4f8e1b7c30"
	hdr := map[string]string{"X-Request-ID": clientRequestID}
	for k, v := range c.headers {
		hdr[k] = v
	}
	r := e.send("GET", tPath, nil, hdr, "")
	if got := r.header.Get("X-Request-ID"); got != clientRequestID {
		t.Errorf("the client's X-Request-ID is not echoed")
	}
	x.add("get tenant with the client's request id", r, 200, w("read", "Tenant", c, tenant, "first_name", "last_name", "ssn"))

	// Protected identity on the tenant.
	pi := x.create("create protected identity", c, piPath, "Protectedidentity", map[string]any{
		"tenant": ref(tenant), "first_name": personal("Auditpi-Ops"), "phone_number": personal("+46701112233"),
		"custom_id": "pi-1",
	}, "first_name", "phone_number")
	x.add("get protected identity", c.do("GET", auditObjPath(piPath, pi), nil), 200,
		w("read", "Protectedidentity", c, pi, "first_name", "phone_number"))
	x.add("patch protected identity", c.do("PATCH", auditObjPath(piPath, pi), map[string]any{
		"birth_date": "1961-07-14", "first_name": personal("Auditpi-Ops2"),
	}), 200, w("update", "Protectedidentity", c, pi, "birth_date", "first_name", "phone_number"))

	// Subtenant with a protected identity.
	sub := x.create("create subtenant", c, subPath, "Subtenant", map[string]any{"last_name": personal("Auditsub-Ops")}, "last_name")
	x.add("get subtenant", c.do("GET", auditObjPath(subPath, sub), nil), 200, w("read", "Subtenant", c, sub, "last_name"))
	pi2 := x.create("create protected identity of the subtenant", c, piPath, "Protectedidentity", map[string]any{
		"sub_tenant": ref(sub), "last_name": personal("Auditpi2-Ops"), "ssn": ssns[1].Input,
	}, "last_name", "ssn")

	// Bulk write: one entry per item.
	r = c.do("POST", tenantPath+"list/", []map[string]any{
		{"first_name": personal("Auditbulk-One")},
		{"corporate_name": personal("Auditbulk Two AB"), "email": personal("audit.bulk@example.se")},
		{"id": auditID(tenant), "phone_number": personal("+46702223344")},
	})
	if r.status != http.StatusCreated || len(r.objects) != 3 {
		t.Fatalf("bulk write: status %d, %d objects, want 201 and 3", r.status, len(r.objects))
	}
	bulk0, _ := r.objects[0].(map[string]any)
	bulk1, _ := r.objects[1].(map[string]any)
	x.add("bulk write of tenants", r, http.StatusCreated,
		w("create", "Tenant", c, bulk0, "first_name"),
		w("create", "Tenant", c, bulk1, "corporate_name", "email"),
		w("update", "Tenant", c, tenant, "first_name", "last_name", "ssn", "phone_number"))
	pi3 := x.create("create protected identity of a bulk tenant", c, piPath, "Protectedidentity", map[string]any{
		"tenant": ref(bulk0), "email": personal("audit.pi3@example.se"),
	}, "email")

	// Requests that fail make no entry.
	x.add("get unknown tenant", c.do("GET", tenantPath+uuid.NewString()+"/", nil), 404)
	x.add("create invalid tenant", c.do("POST", tenantPath, map[string]any{"custom_id": "no-name"}), 400)
	x.add("patch tenant invalid", c.do("PATCH", tPath, map[string]any{"email": "not-an-email"}), 400)
	x.add("create tenant by the read client", reader.do("POST", tenantPath, map[string]any{"first_name": personal("Auditnever")}), 403)
	x.add("delete tenant by the read client", reader.do("DELETE", tPath, nil), 403)
	x.add("get another customer's tenant", other.do("GET", tPath, nil), 404)
	x.add("delete unknown address", c.do("DELETE", addressPath+uuid.NewString()+"/", nil), 404)

	// Deletes: the object's own entry, and one cascade_delete per cascaded
	// protected identity, every personal field named.
	x.add("delete protected identity", c.do("DELETE", auditObjPath(piPath, pi3), nil), 204,
		w("delete", "Protectedidentity", c, pi3, auditPIPersonal...))
	x.add("delete tenant", c.do("DELETE", tPath, nil), 204,
		w("delete", "Tenant", c, tenant, auditTenantPersonal...),
		w("cascade_delete", "Protectedidentity", c, pi, auditPIPersonal...))
	x.add("delete subtenant", c.do("DELETE", auditObjPath(subPath, sub), nil), 204,
		w("delete", "Subtenant", c, sub, auditTenantPersonal...),
		w("cascade_delete", "Protectedidentity", c, pi2, auditPIPersonal...))
	x.add("delete address", c.do("DELETE", auditObjPath(addressPath, addr), nil), 204,
		w("delete", "Address", c, addr, auditAddressPersonal...))
	x.add("delete organization", c.do("DELETE", auditObjPath(orgPath, org), nil), 204)

	x.check(auditEntries(t, e, c.customerID))

	// The other customer's chain holds none of this.
	if n := len(auditEntries(t, e, other.customerID)); n != 0 {
		t.Errorf("the other customer has %d audit entries, want 0", n)
	}
	if _, _, err := e.run("audit", "verify", "--customer", c.customerID); err != nil {
		t.Errorf("audit verify after the operations: %v", err)
	}
}

// auditListed returns the objects of a 200 list response in any of its
// forms: a JSON array, the statistics envelope, or JSON Lines.
func auditListed(t *testing.T, label string, r response) []map[string]any {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("%s: status %d, want 200 (error keys %v)", label, r.status, keys(r.obj))
	}
	var raw []any
	switch {
	case r.objects != nil:
		raw = r.objects
	case r.obj != nil:
		data, ok := r.obj["data"].([]any)
		if !ok {
			t.Fatalf("%s: statistics body without a data array", label)
		}
		raw = data
	case strings.HasPrefix(r.header.Get("Content-Type"), "application/jsonl"):
		for _, line := range bytes.Split(r.raw, []byte("\n")) {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				t.Fatalf("%s: a JSON Lines line is not an object", label)
			}
			raw = append(raw, m)
		}
	case string(bytes.TrimSpace(r.raw)) == "[]":
	default:
		t.Fatalf("%s: body is no list", label)
	}
	out := make([]map[string]any, len(raw))
	for i, o := range raw {
		m, ok := o.(map[string]any)
		if !ok {
			t.Fatalf("%s: element %d is not an object", label, i)
		}
		out[i] = m
	}
	return out
}

// auditNonNull returns the names among fields that hold a value in any of objs.
func auditNonNull(objs []map[string]any, fields []string) []string {
	var out []string
	for _, f := range fields {
		for _, o := range objs {
			if o[f] != nil {
				out = append(out, f)
				break
			}
		}
	}
	return out
}

// auditCheckListRead checks the read entries of one list request: every
// returned object in exactly one of them, no other id, at most 1,000 ids
// an entry, each entry naming the non-null personal fields of its objects
// (personal nil: the list must have made no entry at all).
func auditCheckListRead(t *testing.T, label string, entries []auditLine, reqID string, c *client, resource string,
	personal []string, returned []map[string]any) {
	t.Helper()
	var mine []auditLine
	for _, l := range entries {
		if l.RequestID == reqID {
			mine = append(mine, l)
		}
	}
	if personal == nil {
		for _, l := range mine {
			t.Errorf("%s: entry %s, want none", label, l.describe())
		}
		return
	}
	if len(returned) > 0 && len(mine) == 0 {
		t.Errorf("%s: %d objects returned, no read entry", label, len(returned))
		return
	}
	byID := map[string]map[string]any{}
	for _, o := range returned {
		byID[auditID(o)] = o
	}
	seen := map[string]int{}
	for _, l := range mine {
		if l.Action != "read" || l.Resource != resource || l.ClientID != c.id {
			t.Errorf("%s: entry %s by client %s, want read %s by client %s", label, l.describe(), l.ClientID, resource, c.id)
		}
		if len(l.ObjectIDs) > 1000 {
			t.Errorf("%s: an entry lists %d ids, more than 1000", label, len(l.ObjectIDs))
		}
		var objs []map[string]any
		for _, id := range l.ObjectIDs {
			seen[id]++
			if o, ok := byID[id]; ok {
				objs = append(objs, o)
			} else {
				t.Errorf("%s: entry %d lists id %s, which the list did not return", label, l.Position, id)
			}
		}
		if want := auditNonNull(objs, personal); !auditSameSet(l.Fields, want) || len(l.Fields) != len(want) {
			t.Errorf("%s: entry %d fields %v, want %v", label, l.Position, l.Fields, want)
		}
	}
	for id := range byID {
		if seen[id] != 1 {
			t.Errorf("%s: returned object %s is in %d read entries, want 1", label, id, seen[id])
		}
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("%s: id %s listed %d times", label, id, n)
		}
	}
}

func TestAuditListReads(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Audit Lists AB")
	reader := e.newClient(c.customerID, "read")
	other := e.newCustomer("Audit Lists Other AB")
	other.create(tenantPath, map[string]any{"first_name": personal("Auditother-List")})

	// Tenants with different personal fields set, in two groups.
	bodies := []map[string]any{
		{"first_name": personal("Auditlist-Anna"), "custom_id": "grp-a"},
		{"last_name": personal("Auditlist-Berg"), "email": personal("audit.list.b@example.se"), "custom_id": "grp-a"},
		{"corporate_name": personal("Auditlist Cement AB"), "custom_id": "grp-b"},
		{"first_name": personal("Auditlist-Dora"), "phone_number": personal("+46703334455"), "custom_id": "grp-b"},
		{"first_name": personal("Auditlist-Erik"), "birth_date": "1970-01-02", "custom_id": "grp-b"},
	}
	var tenants []map[string]any
	for _, b := range bodies {
		tenants = append(tenants, c.create(tenantPath, b))
	}
	c.create(addressPath, map[string]any{"street": personal("Auditlistgatan"), "postal_code": personal("414 63"),
		"city": personal("Auditlistby"), "country": "Sverige"})
	c.create(orgPath, map[string]any{"name": "Audit Lists Org"})

	type listCase struct {
		label    string
		client   *client
		path     string
		resource string
		personal []string // nil: no entry at all
		want     int      // objects the list must return, -1 for any
	}
	cases := []listCase{
		{"unpaged array", c, tenantPath, "Tenant", auditTenantPersonal, 5},
		{"list/ endpoint", c, tenantPath + "list/", "Tenant", auditTenantPersonal, 5},
		{"by the read client", reader, tenantPath, "Tenant", auditTenantPersonal, 5},
		{"JSON Lines", c, tenantPath + "list/?_jsonl=true", "Tenant", auditTenantPersonal, 5},
		{"statistics", c, tenantPath + "list/?_statistics=true", "Tenant", auditTenantPersonal, 5},
		{"page 1 of 2", c, tenantPath + "list/?_page=1&_page_size=2", "Tenant", auditTenantPersonal, 2},
		{"page 2 of 2", c, tenantPath + "list/?_page=2&_page_size=2", "Tenant", auditTenantPersonal, 2},
		{"last page", c, tenantPath + "list/?_page=3&_page_size=2&_statistics=true", "Tenant", auditTenantPersonal, 1},
		{"page ordered by a personal field", c, tenantPath + "list/?_page=1&_page_size=3&_order_by=-first_name", "Tenant", auditTenantPersonal, 3},
		{"filter on a clear field", c, tenantPath + "list/?custom_id=grp-b", "Tenant", auditTenantPersonal, 3},
		{"filter on a personal field", c, tenantPath + "list/?email=audit.list.b@example.se", "Tenant", auditTenantPersonal, 1},
		{"search", c, tenantPath + "list/?_search=auditlist-", "Tenant", auditTenantPersonal, 4},
		{"ordered by a personal field", c, tenantPath + "list/?_order_by=last_name,first_name", "Tenant", auditTenantPersonal, 5},
		{"paged and filtered", c, tenantPath + "list/?custom_id=grp-b&_page=2&_page_size=2", "Tenant", auditTenantPersonal, 1},
		{"nothing matches", c, tenantPath + "list/?custom_id=none", "Tenant", auditTenantPersonal, 0},
		{"slim", c, tenantPath + "list/?_slim=true", "Tenant", nil, 5},
		{"slim page", c, tenantPath + "list/?_slim=true&_page=1&_page_size=2", "Tenant", nil, 2},
		{"slim JSON Lines", c, tenantPath + "list/?_slim=true&_jsonl=true", "Tenant", nil, 5},
		{"slim filtered", c, tenantPath + "list/?_slim=true&custom_id=grp-a", "Tenant", nil, 2},
		{"addresses", c, addressPath, "Address", auditAddressPersonal, 1},
		{"organizations", c, orgPath, "Organization", nil, 1},
		{"protected identities (none)", c, piPath, "Protectedidentity", auditPIPersonal, 0},
	}
	type done struct {
		reqID    string
		returned []map[string]any
	}
	results := make([]done, len(cases))
	for i, tc := range cases {
		r := tc.client.do("GET", tc.path, nil)
		results[i] = done{auditReqID(t, tc.label, r), auditListed(t, tc.label, r)}
		if tc.want >= 0 && len(results[i].returned) != tc.want {
			t.Errorf("%s: %d objects returned, want %d", tc.label, len(results[i].returned), tc.want)
		}
	}
	entries := auditEntries(t, e, c.customerID)
	for i, tc := range cases {
		auditCheckListRead(t, tc.label, entries, results[i].reqID, tc.client, tc.resource, tc.personal, results[i].returned)
	}
	// A page records exactly the page: the pages of two together are
	// the first four tenants, each once.
	var paged []string
	for _, l := range entries {
		if l.RequestID == results[5].reqID || l.RequestID == results[6].reqID {
			paged = append(paged, l.ObjectIDs...)
		}
	}
	var firstFour []string
	for _, o := range tenants[:4] {
		firstFour = append(firstFour, auditID(o))
	}
	if !auditSameSet(paged, firstFour) || len(paged) != 4 {
		t.Errorf("pages 1 and 2 of size 2 recorded ids %v, want the first four tenants %v", paged, firstFour)
	}
	// Nothing but the creates and the lists: one create per tenant and
	// address, and the list entries checked above.
	creates := 0
	for _, l := range entries {
		if l.Action == "create" {
			creates++
		} else if l.Action != "read" {
			t.Errorf("unexpected entry %s", l.describe())
		}
	}
	if creates != 6 {
		t.Errorf("%d create entries, want 6 (5 tenants, 1 address)", creates)
	}
	if n := len(auditEntries(t, e, other.customerID)); n != 1 {
		t.Errorf("the other customer has %d entries, want 1 (its create)", n)
	}
}

// A stream of more than 1,000 objects is recorded in chunks of at most
// 1,000 ids, every object in exactly one.
func TestAuditListChunks(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Audit Chunks AB")
	const n = 1234
	personal("Auditchunk-")
	for start := 0; start < n; start += 1000 {
		var items []map[string]any
		for i := start; i < min(n, start+1000); i++ {
			items = append(items, map[string]any{"first_name": fmt.Sprintf("Auditchunk-%04d", i)})
		}
		r := c.do("POST", tenantPath+"list/", items)
		if r.status != http.StatusCreated {
			t.Fatalf("bulk create from %d: status %d", start, r.status)
		}
	}
	cases := []struct {
		label string
		path  string
		want  int
	}{
		{"unpaged array", tenantPath, n},
		{"JSON Lines", tenantPath + "list/?_jsonl=true", n},
		{"ordered by a personal field", tenantPath + "list/?_order_by=-first_name", n},
		{"page of 1000", tenantPath + "list/?_page=1&_page_size=1000", 1000},
		{"second page of 1000", tenantPath + "list/?_page=2&_page_size=1000", n - 1000},
	}
	reqIDs := make([]string, len(cases))
	returned := make([][]map[string]any, len(cases))
	for i, tc := range cases {
		r := c.do("GET", tc.path, nil)
		reqIDs[i] = auditReqID(t, tc.label, r)
		returned[i] = auditListed(t, tc.label, r)
		if len(returned[i]) != tc.want {
			t.Errorf("%s: %d objects, want %d", tc.label, len(returned[i]), tc.want)
		}
	}
	entries := auditEntries(t, e, c.customerID)
	for i, tc := range cases {
		auditCheckListRead(t, tc.label, entries, reqIDs[i], c, "Tenant", auditTenantPersonal, returned[i])
		count := 0
		for _, l := range entries {
			if l.RequestID == reqIDs[i] {
				count++
			}
		}
		if min := (tc.want + 999) / 1000; count < min {
			t.Errorf("%s: %d read entries, want at least %d", tc.label, count, min)
		}
		if strings.Contains(tc.path, "_page=") && count != 1 {
			t.Errorf("%s: a page made %d read entries, want 1", tc.label, count)
		}
	}
}

// auditRawRows returns every row of table as the bytes of its columns,
// each converted to text or bytes, for scanning.
func auditRawRows(t *testing.T, db *rawDB, table string) [][]byte {
	t.Helper()
	rows, err := db.db.Query("SELECT * FROM " + table)
	if err != nil {
		t.Fatalf("reading %s: %v", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatalf("reading %s: %v", table, err)
		}
		var row []byte
		for _, v := range vals {
			switch v := v.(type) {
			case []byte:
				row = append(row, v...)
			case string:
				row = append(row, v...)
			case time.Time:
				row = append(row, v.Format(time.RFC3339Nano)...)
			default:
				row = fmt.Append(row, v)
			}
			row = append(row, 0)
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAuditNoPersonalValues(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Audit Values AB")
	ssns := auditSSNs(t)
	var values []string // every personal value sent, in every form it may take
	p := func(v string) string {
		values = append(values, personal(v))
		return v
	}
	ssn := func(s ssnVector) string {
		values = append(values, s.Input, s.Canonical)
		return s.Input
	}
	num := func(v float64) float64 {
		values = append(values, fmt.Sprint(v))
		return v
	}

	addr := c.create(addressPath, map[string]any{
		"street": p("Auditvaluevägen"), "street_number": p("4711B"), "postal_code": p("413 27"),
		"city": p("Auditvalueborg"), "country": "Sverige", "care_of": p("c/o Auditvaluesson"),
		"attention": p("Att. Auditvaluedotter"), "latitude": num(57.708871), "longitude": num(11.974563),
	})
	tenant := c.create(tenantPath, map[string]any{
		"first_name": p("Auditvalue-Tyra"), "last_name": p("Auditvalue-Lind"), "corporate_name": p("Auditvalue Holding AB"),
		"ssn": ssn(ssns[2]), "birth_date": p("1944-08-13"), "email": p("tyra.auditvalue@example.se"),
		"phone_number": p("+46704445566"), "current_registered_address": ref(addr),
	})
	sub := c.create(subPath, map[string]any{
		"first_name": p("Auditvalue-Sune"), "email": p("sune.auditvalue@example.se"), "ssn": ssn(ssns[3]),
	})
	pi := c.create(piPath, map[string]any{
		"tenant": ref(tenant), "first_name": p("Auditvalue-Hemlig"), "last_name": p("Auditvalue-Skyddad"),
		"email": p("hemlig.auditvalue@example.se"), "phone_number": p("+46705556677"), "ssn": ssn(ssns[4]),
		"birth_date": p("1990-06-02"),
	})
	pi2 := c.create(piPath, map[string]any{"sub_tenant": ref(sub), "last_name": p("Auditvalue-Dold")})
	for _, path := range []string{auditObjPath(addressPath, addr), auditObjPath(tenantPath, tenant),
		auditObjPath(subPath, sub), auditObjPath(piPath, pi), auditObjPath(piPath, pi2)} {
		if r := c.do("GET", path, nil); r.status != 200 {
			t.Fatalf("GET: status %d", r.status)
		}
	}
	for i, q := range []string{
		tenantPath, piPath + "list/?_jsonl=true", subPath + "list/?_page=1&_page_size=5",
		addressPath + "list/?_search=auditvaluev", tenantPath + "list/?email=tyra.auditvalue@example.se",
		piPath + "list/?_order_by=last_name&_statistics=true",
	} {
		if r := c.do("GET", q, nil); r.status != 200 {
			t.Fatalf("list %d: status %d", i, r.status)
		}
	}
	for path, body := range map[string]map[string]any{
		auditObjPath(tenantPath, tenant): {"first_name": p("Auditvalue-Tyra2"), "email": p("tyra2.auditvalue@example.se"), "ssn": ssn(ssns[5])},
		auditObjPath(piPath, pi):         {"phone_number": p("+46706667788"), "birth_date": p("1991-07-03")},
		auditObjPath(addressPath, addr):  {"street": p("Auditvaluegatan"), "latitude": num(58.123457)},
		auditObjPath(subPath, sub):       {"last_name": p("Auditvalue-Sundin")},
	} {
		if r := c.do("PATCH", path, body); r.status != 200 {
			t.Fatalf("PATCH: status %d (error keys %v)", r.status, keys(r.obj))
		}
	}
	r := c.do("POST", tenantPath+"list/", []map[string]any{
		{"first_name": p("Auditvalue-Bulk"), "phone_number": p("+46707778899")},
		{"id": auditID(tenant), "last_name": p("Auditvalue-Lind2")},
	})
	if r.status != http.StatusCreated {
		t.Fatalf("bulk write: status %d", r.status)
	}
	for _, path := range []string{auditObjPath(subPath, sub), auditObjPath(tenantPath, tenant)} {
		if r := c.do("DELETE", path, nil); r.status != http.StatusNoContent {
			t.Fatalf("DELETE: status %d", r.status)
		}
	}

	db := e.rawDB()
	entries := auditRawRows(t, db, "audit_entries")
	if len(entries) < 20 {
		t.Fatalf("only %d audit rows: the scan would prove little", len(entries))
	}
	heads := auditRawRows(t, db, "audit_heads")
	jsonOut, _, err := e.run("audit", "list", "--customer", c.customerID, "--json")
	if err != nil {
		t.Fatalf("audit list --json: %v", err)
	}
	textOut, _, err := e.run("audit", "list", "--customer", c.customerID)
	if err != nil {
		t.Fatalf("audit list: %v", err)
	}
	verifyOut, _, err := e.run("audit", "verify", "--json")
	if err != nil {
		t.Fatalf("audit verify: %v", err)
	}
	if !strings.Contains(jsonOut, auditID(pi)) || !strings.Contains(jsonOut, "cascade_delete") {
		t.Fatalf("audit list --json lacks the entries the test made")
	}
	for i, v := range values {
		for j, row := range entries {
			if bytes.Contains(row, []byte(v)) {
				t.Errorf("audit_entries row %d holds personal value #%d", j, i)
			}
		}
		for j, row := range heads {
			if bytes.Contains(row, []byte(v)) {
				t.Errorf("audit_heads row %d holds personal value #%d", j, i)
			}
		}
		for name, out := range map[string]string{"audit list --json": jsonOut, "audit list": textOut, "audit verify --json": verifyOut} {
			if strings.Contains(out, v) {
				t.Errorf("%s output holds personal value #%d", name, i)
			}
		}
	}
}

// auditVerifyResult is one customer's result of `audit verify --json`.
type auditVerifyResult struct {
	CustomerID string `json:"customer_id"`
	Entries    int64  `json:"entries"`
	Intact     bool   `json:"intact"`
	BrokenAt   *int64 `json:"broken_at"`
	Reason     string `json:"reason"`
}

// auditVerify runs `audit verify --json` (plus args) and returns its
// results by customer, and its error.
func auditVerify(t *testing.T, e *env, args ...string) (map[string]auditVerifyResult, error) {
	t.Helper()
	out, _, err := e.run(append([]string{"audit", "verify", "--json"}, args...)...)
	if err != nil && !cli.ErrChainBroken(err) {
		t.Fatalf("audit verify: unexpected error %v", err)
	}
	var list []auditVerifyResult
	if jerr := json.Unmarshal([]byte(out), &list); jerr != nil {
		t.Fatalf("audit verify --json printed no JSON array: %v", jerr)
	}
	res := map[string]auditVerifyResult{}
	for _, r := range list {
		if _, dup := res[r.CustomerID]; dup {
			t.Errorf("audit verify reports customer %s twice", r.CustomerID)
		}
		res[r.CustomerID] = r
	}
	return res, err
}

// auditTamper tampers with one customer's stored chain behind the service's
// back, and restores it from a copy taken at the start.
type auditTamper struct {
	t        *testing.T
	e        *env
	db       *rawDB
	customer string
}

const auditColumns = "customer_id, position, at, client_id, request_id, action, resource, object_ids, fields, prev_hash, hash"

func newAuditTamper(t *testing.T, e *env, customer string) *auditTamper {
	a := &auditTamper{t: t, e: e, db: e.rawDB(), customer: customer}
	a.ddl("CREATE TABLE audit_test_saved_entries AS SELECT * FROM audit_entries")
	a.ddl("CREATE TABLE audit_test_saved_heads AS SELECT * FROM audit_heads")
	return a
}

// ddl runs a statement that may change any number of rows.
func (a *auditTamper) ddl(q string, args ...any) {
	a.t.Helper()
	if _, err := a.db.db.Exec(a.db.bind(q), args...); err != nil {
		a.t.Fatalf("statement failed: %v", err)
	}
}

func (a *auditTamper) restore() {
	a.t.Helper()
	a.ddl("DELETE FROM audit_entries")
	a.ddl("INSERT INTO audit_entries (" + auditColumns + ") SELECT " + auditColumns + " FROM audit_test_saved_entries")
	a.ddl("DELETE FROM audit_heads")
	a.ddl("INSERT INTO audit_heads (customer_id, position, hash) SELECT customer_id, position, hash FROM audit_test_saved_heads")
}

// set updates one column of entry k to the SQL expression expr.
func (a *auditTamper) set(k int64, expr string, args ...any) {
	a.t.Helper()
	a.db.exec("UPDATE audit_entries SET "+expr+" WHERE customer_id = ? AND position = ?", append(args, a.customer, k)...)
}

// list sets a list column (object_ids or fields) of entry k to l.
func (a *auditTamper) list(k int64, column string, l []string) {
	a.t.Helper()
	if a.db.pg {
		a.set(k, column+" = string_to_array(CAST(? AS text), ',')", strings.Join(l, ","))
		return
	}
	data, _ := json.Marshal(l)
	a.set(k, column+" = ?", string(data))
}

// copyTo inserts a copy of entry src at position pos.
func (a *auditTamper) copyTo(src, pos int64) {
	a.t.Helper()
	cols := strings.Replace(auditColumns, "position", fmt.Sprint(pos), 1)
	a.db.exec("INSERT INTO audit_entries ("+auditColumns+") SELECT "+cols+
		" FROM audit_entries WHERE customer_id = ? AND position = ?", a.customer, src)
}

// move sets the position of the entry at from to to.
func (a *auditTamper) move(from, to int64) {
	a.t.Helper()
	a.set(from, "position = ?", to)
}

// shiftUp moves the entries at positions >= k one up, through negative
// positions so that no two rows ever share a position.
func (a *auditTamper) shiftUp(k int64) {
	a.t.Helper()
	a.ddl("UPDATE audit_entries SET position = -(position + 1) WHERE customer_id = ? AND position >= ?", a.customer, k)
	a.ddl("UPDATE audit_entries SET position = -position WHERE customer_id = ? AND position < 0 AND position > -100000", a.customer)
}

// expectBroken runs audit verify --json on every chain and checks that it
// names position k of the tampered chain, and no other chain; with text it
// also runs the text form limited to the tampered customer. It restores the
// chain after.
func (a *auditTamper) expectBroken(label string, k int64, text bool, others ...string) {
	a.t.Helper()
	defer a.restore()
	res, err := auditVerify(a.t, a.e)
	if !cli.ErrChainBroken(err) {
		a.t.Errorf("%s: audit verify returned %v, want the broken-chain error", label, err)
	}
	got := res[a.customer]
	switch {
	case got.CustomerID == "":
		a.t.Errorf("%s: audit verify does not report the tampered customer", label)
	case got.Intact || got.BrokenAt == nil:
		a.t.Errorf("%s: audit verify reports the chain intact", label)
	case *got.BrokenAt != k:
		a.t.Errorf("%s: broken at %d, want %d (reason %q)", label, *got.BrokenAt, k, got.Reason)
	}
	for _, o := range others {
		if r := res[o]; !r.Intact || r.BrokenAt != nil {
			a.t.Errorf("%s: an untouched customer's chain is not reported intact", label)
		}
	}
	if !text {
		return
	}
	// --customer limits verify to one chain, and the text form names the position.
	out, _, err := a.e.run("audit", "verify", "--customer", a.customer)
	if !cli.ErrChainBroken(err) {
		a.t.Errorf("%s: audit verify --customer returned %v, want the broken-chain error", label, err)
	}
	if want := fmt.Sprintf("broken at position %d", k); !strings.Contains(out, want) {
		a.t.Errorf("%s: audit verify --customer output does not say %q", label, want)
	}
	for _, o := range others {
		if strings.Contains(out, o) {
			a.t.Errorf("%s: audit verify --customer reports another customer", label)
		}
	}
}

func TestAuditVerifyDetectsTampering(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Audit Chain AB")
	b := e.newCustomer("Audit Chain Other AB")
	idle := e.newCustomer("Audit Chain Idle AB")

	// Customer c: nine entries of several actions and resources.
	tenant := c.create(tenantPath, map[string]any{"first_name": personal("Auditchain-Tove"), "email": personal("tove.auditchain@example.se")})
	c.do("GET", auditObjPath(tenantPath, tenant), nil)
	c.do("PATCH", auditObjPath(tenantPath, tenant), map[string]any{"last_name": personal("Auditchain-Ek")})
	pi := c.create(piPath, map[string]any{"tenant": ref(tenant), "first_name": personal("Auditchain-Hemlig")})
	c.do("GET", tenantPath, nil)
	c.do("GET", auditObjPath(piPath, pi), nil)
	c.create(addressPath, map[string]any{"street": personal("Auditchaingatan"), "postal_code": personal("411 22"),
		"city": personal("Auditchainby"), "country": "Sverige"})
	c.do("DELETE", auditObjPath(tenantPath, tenant), nil) // delete + cascade_delete
	// Customer b: two entries.
	bt := b.create(tenantPath, map[string]any{"first_name": personal("Auditchain-Other")})
	b.do("GET", auditObjPath(tenantPath, bt), nil)

	orig := auditEntries(t, e, c.customerID)
	const n = 9
	if len(orig) != n {
		t.Fatalf("customer has %d audit entries, want %d", len(orig), n)
	}

	// Intact: nil, every chain reported intact with its entry count.
	res, err := auditVerify(t, e)
	if err != nil {
		t.Fatalf("audit verify on intact chains: %v", err)
	}
	for _, want := range []struct {
		id      string
		entries int64
	}{{c.customerID, n}, {b.customerID, 2}} {
		if r := res[want.id]; !r.Intact || r.BrokenAt != nil || r.Entries != want.entries {
			t.Errorf("intact chain reported intact=%v broken_at=%v entries=%d, want intact with %d entries",
				r.Intact, r.BrokenAt, r.Entries, want.entries)
		}
	}
	if r, ok := res[idle.customerID]; ok && !r.Intact {
		t.Errorf("a customer without entries is reported broken")
	}
	res, err = auditVerify(t, e, "--customer", b.customerID)
	if err != nil || len(res) != 1 || !res[b.customerID].Intact {
		t.Errorf("audit verify --customer: err %v, %d results, want the one customer intact", err, len(res))
	}
	if out, _, err := e.run("audit", "verify"); err != nil || !strings.Contains(out, c.customerID) || !strings.Contains(out, b.customerID) {
		t.Errorf("audit verify (text): err %v, or a customer not reported", err)
	}

	a := newAuditTamper(t, e, c.customerID)
	others := []string{b.customerID}
	// Each position gets its action edited, and one more column edited in
	// turn, so that every column is edited at some position.
	edits := []struct {
		column string
		edit   func(k int64, en auditLine)
	}{
		{"request_id", func(k int64, en auditLine) { a.set(k, "request_id = ?", "forged-request-id") }},
		{"fields", func(k int64, en auditLine) {
			fields := append(slices.Clone(en.Fields), "ssn")
			if len(en.Fields) > 0 {
				fields = en.Fields[1:]
			}
			a.list(k, "fields", fields)
		}},
		{"object_ids", func(k int64, en auditLine) {
			a.list(k, "object_ids", append(slices.Clone(en.ObjectIDs), uuid.NewString()))
		}},
		{"client_id", func(k int64, en auditLine) { a.set(k, "client_id = ?", b.id) }},
		{"resource", func(k int64, en auditLine) {
			resource := "Subtenant"
			if en.Resource == resource {
				resource = "Tenant"
			}
			a.set(k, "resource = ?", resource)
		}},
		{"time", func(k int64, en auditLine) {
			if a.db.pg {
				a.set(k, "at = at + interval '1 second'")
			} else {
				a.set(k, "at = ?", "2001-02-03T04:05:06.000000Z")
			}
		}},
		{"hash", func(k int64, en auditLine) { a.set(k, "hash = ?", bytes.Repeat([]byte{0xab}, 32)) }},
		{"prev_hash", func(k int64, en auditLine) { a.set(k, "prev_hash = ?", bytes.Repeat([]byte{0xcd}, 32)) }},
	}
	for k := int64(1); k <= n; k++ {
		en := orig[k-1]
		// (a) One column edited.
		action := "delete"
		if en.Action == action {
			action = "read"
		}
		a.set(k, "action = ?", action)
		a.expectBroken(fmt.Sprintf("action of %d edited", k), k, true, others...)
		ed := edits[(k-1)%int64(len(edits))]
		ed.edit(k, en)
		a.expectBroken(fmt.Sprintf("%s of %d edited", ed.column, k), k, false, others...)

		// (b) Deleted, the last one included.
		a.db.exec("DELETE FROM audit_entries WHERE customer_id = ? AND position = ?", c.customerID, k)
		a.expectBroken(fmt.Sprintf("entry %d deleted", k), k, k == n, others...)

		// (c) A copy of entry k appended after the end (for the first and
		// the last entry: the forged position is n+1 whichever is copied) ...
		if k == 1 || k == n {
			a.copyTo(k, n+1)
			a.expectBroken(fmt.Sprintf("copy of %d appended", k), n+1, k == n, others...)
			// ... with the recorded head moved to it too.
			a.copyTo(k, n+1)
			a.db.exec("UPDATE audit_heads SET position = ?, hash = (SELECT hash FROM audit_entries WHERE customer_id = ? AND position = ?) WHERE customer_id = ?",
				n+1, c.customerID, n+1, c.customerID)
			a.expectBroken(fmt.Sprintf("copy of %d appended, head moved", k), n+1, false, others...)
		}
		// A copy of another entry inserted at k, the rest shifted up.
		src := k%n + 1
		a.copyTo(src, -100000)
		a.shiftUp(k)
		a.move(-100000, k)
		a.expectBroken(fmt.Sprintf("copy of %d inserted at %d", src, k), k, false, others...)

		// (d) Entries k and k+1 swapped.
		if k < n {
			a.move(k, -1)
			a.move(k+1, k)
			a.move(-1, k+1)
			a.expectBroken(fmt.Sprintf("entries %d and %d swapped", k, k+1), k, false, others...)
		}
	}
	// The head row deleted, or set back to an empty chain, the entries
	// left: verifying every chain still walks this one (it listed only
	// chains with a head past 0, and passed it over).
	a.db.exec("DELETE FROM audit_heads WHERE customer_id = ?", c.customerID)
	a.expectBroken("head deleted", 1, true, others...)
	a.db.exec("UPDATE audit_heads SET position = 0 WHERE customer_id = ?", c.customerID)
	a.expectBroken("head set back to 0", 1, true, others...)
	// The head row alone cut back by one: the last entry is beyond it.
	a.db.exec("UPDATE audit_heads SET position = ?, hash = (SELECT hash FROM audit_entries WHERE customer_id = ? AND position = ?) WHERE customer_id = ?",
		n-1, c.customerID, n-1, c.customerID)
	a.expectBroken("head moved back by one", n, true, others...)
	// The head's hash altered.
	a.db.exec("UPDATE audit_heads SET hash = ? WHERE customer_id = ?", bytes.Repeat([]byte{1}, 32), c.customerID)
	a.expectBroken("head hash edited", n, true, others...)

	// Restored: intact again, and the service keeps appending to it.
	if res, err := auditVerify(t, e); err != nil || !res[c.customerID].Intact {
		t.Fatalf("after restoring: verify error %v, chain intact %v", err, res[c.customerID].Intact)
	}
	c.create(tenantPath, map[string]any{"first_name": personal("Auditchain-After")})
	if res, err := auditVerify(t, e, "--customer", c.customerID); err != nil || !res[c.customerID].Intact || res[c.customerID].Entries != n+1 {
		t.Errorf("after a new write: verify error %v, intact %v, %d entries, want intact with %d",
			err, res[c.customerID].Intact, res[c.customerID].Entries, n+1)
	}
}

// auditCheck500 asserts the contract's 500 body (exactly detail and
// request_id, the id that of the X-Request-ID header) holding none of values.
func auditCheck500(t *testing.T, label string, r response, values []string) {
	t.Helper()
	for i, v := range values {
		if bytes.Contains(r.raw, []byte(v)) {
			t.Errorf("%s: body holds personal value #%d", label, i)
		}
	}
	if r.status != http.StatusInternalServerError {
		t.Errorf("%s: status %d, want 500", label, r.status)
		return
	}
	if len(r.obj) != 2 || r.obj["detail"] == nil {
		t.Errorf("%s: 500 body keys %v, want exactly detail and request_id", label, keys(r.obj))
	}
	if id, _ := r.obj["request_id"].(string); id == "" || id != r.header.Get("X-Request-ID") {
		t.Errorf("%s: 500 body request_id is not the X-Request-ID header", label)
	}
}

// auditFailWrites installs a trigger that makes every insert into
// audit_entries fail, and returns the function that drops it.
func auditFailWrites(t *testing.T, db *rawDB) func() {
	t.Helper()
	stmts := []string{`CREATE TRIGGER audit_fail BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'audit off'); END`}
	drop := []string{`DROP TRIGGER audit_fail`}
	if db.pg {
		stmts = []string{
			`CREATE FUNCTION audit_fail_fn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit off'; END $$`,
			`CREATE TRIGGER audit_fail BEFORE INSERT ON audit_entries FOR EACH ROW EXECUTE FUNCTION audit_fail_fn()`,
		}
		drop = []string{`DROP TRIGGER audit_fail ON audit_entries`, `DROP FUNCTION audit_fail_fn()`}
	}
	for _, q := range stmts {
		if _, err := db.db.Exec(q); err != nil {
			t.Fatalf("installing the failing trigger: %v", err)
		}
	}
	return func() {
		t.Helper()
		for _, q := range drop {
			if _, err := db.db.Exec(q); err != nil {
				t.Fatalf("dropping the failing trigger: %v", err)
			}
		}
	}
}

func TestAuditWriteFailureFailsOperation(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Audit Failure AB")
	ssns := auditSSNs(t)
	var values []string
	p := func(v string) string {
		values = append(values, personal(v))
		return v
	}
	ssn := func(s ssnVector) string {
		values = append(values, s.Input, s.Canonical)
		return s.Input
	}

	addr := c.create(addressPath, map[string]any{"street": p("Auditfailvägen"), "postal_code": p("418 73"),
		"city": p("Auditfailstad"), "country": "Sverige"})
	tenant := c.create(tenantPath, map[string]any{"first_name": p("Auditfail-Tekla"), "email": p("tekla.auditfail@example.se"),
		"ssn": ssn(ssns[0]), "custom_id": "fail-t1"})
	pi := c.create(piPath, map[string]any{"tenant": ref(tenant), "first_name": p("Auditfail-Hemlig"),
		"phone_number": p("+46708889900"), "custom_id": "fail-pi1"})
	doomed := c.create(tenantPath, map[string]any{"last_name": p("Auditfail-Doomed"), "custom_id": "fail-t2"})
	doomedPI := c.create(piPath, map[string]any{"tenant": ref(doomed), "last_name": p("Auditfail-DoomedPI")})
	sub := c.create(subPath, map[string]any{"first_name": p("Auditfail-Sub")})
	subPI := c.create(piPath, map[string]any{"sub_tenant": ref(sub), "ssn": ssn(ssns[1])})
	bare := c.create(tenantPath, map[string]any{"first_name": p("Auditfail-Bare")}) // no identity yet
	// Values sent only while the audit fails.
	for _, v := range []string{"Auditfail-NewFirst", "auditfail.new@example.se", "Auditfail-Created",
		"Auditfail-CreatedPI", "Auditfail-Bulk", "+46709990011", "Auditfail-NewStreet"} {
		p(v)
	}

	snapshot := func() map[string]map[string]any {
		out := map[string]map[string]any{}
		for _, path := range []string{auditObjPath(tenantPath, tenant), auditObjPath(piPath, pi), auditObjPath(tenantPath, doomed),
			auditObjPath(piPath, doomedPI), auditObjPath(subPath, sub), auditObjPath(piPath, subPI), auditObjPath(addressPath, addr)} {
			r := c.do("GET", path, nil)
			if r.status != http.StatusOK {
				t.Fatalf("GET of a stored object: status %d", r.status)
			}
			out[path] = r.obj
		}
		return out
	}
	before := snapshot()
	db := e.rawDB()
	listCounts := func() map[string]int {
		out := map[string]int{}
		for _, path := range []string{tenantPath, piPath, subPath, addressPath} {
			r := c.do("GET", path+"list/?_slim=true", nil)
			out[path] = len(auditListed(t, "slim list", r))
		}
		return out
	}
	countsBefore := listCounts()
	entriesBefore := db.count("SELECT COUNT(*) FROM audit_entries")

	restore := auditFailWrites(t, db)
	cases := []struct {
		label  string
		method string
		path   string
		body   any
	}{
		{"GET tenant", "GET", auditObjPath(tenantPath, tenant), nil},
		{"GET protected identity", "GET", auditObjPath(piPath, pi), nil},
		{"GET address", "GET", auditObjPath(addressPath, addr), nil},
		{"list tenants", "GET", tenantPath, nil},
		{"list protected identities (JSON Lines)", "GET", piPath + "list/?_jsonl=true", nil},
		{"list tenants (page)", "GET", tenantPath + "list/?_page=1&_page_size=2", nil},
		{"list tenants (statistics)", "GET", tenantPath + "list/?_statistics=true", nil},
		{"list tenants (personal filter)", "GET", tenantPath + "list/?email=tekla.auditfail@example.se", nil},
		{"list protected identities (search)", "GET", piPath + "list/?_search=auditfail", nil},
		{"POST tenant", "POST", tenantPath, map[string]any{"first_name": "Auditfail-Created", "custom_id": "fail-new"}},
		{"POST protected identity", "POST", piPath, map[string]any{"tenant": ref(bare), "first_name": "Auditfail-CreatedPI"}},
		{"POST address", "POST", addressPath, map[string]any{"street": "Auditfail-NewStreet", "postal_code": "418 74",
			"city": "Auditfailstad", "country": "Sverige"}},
		{"bulk POST tenants", "POST", tenantPath + "list/", []map[string]any{
			{"first_name": "Auditfail-Bulk", "custom_id": "fail-bulk"},
			{"id": auditID(tenant), "phone_number": "+46709990011"}}},
		{"PATCH tenant", "PATCH", auditObjPath(tenantPath, tenant), map[string]any{"first_name": "Auditfail-NewFirst", "email": "auditfail.new@example.se"}},
		{"PATCH tenant (no personal field)", "PATCH", auditObjPath(tenantPath, tenant), map[string]any{"custom_id": "fail-changed"}},
		{"PATCH protected identity", "PATCH", auditObjPath(piPath, pi), map[string]any{"phone_number": "+46709990011"}},
		{"PATCH address", "PATCH", auditObjPath(addressPath, addr), map[string]any{"street": "Auditfail-NewStreet"}},
		{"DELETE tenant (with its identity)", "DELETE", auditObjPath(tenantPath, doomed), nil},
		{"DELETE subtenant (with its identity)", "DELETE", auditObjPath(subPath, sub), nil},
		{"DELETE protected identity", "DELETE", auditObjPath(piPath, pi), nil},
		{"DELETE address", "DELETE", auditObjPath(addressPath, addr), nil},
	}
	for _, tc := range cases {
		r := c.do(tc.method, tc.path, tc.body)
		auditCheck500(t, tc.label, r, values)
	}
	restore()

	// Nothing was written, nothing was recorded.
	if n := db.count("SELECT COUNT(*) FROM audit_entries"); n != entriesBefore {
		t.Errorf("%d audit entries after the failures, want %d", n, entriesBefore)
	}
	after := snapshot()
	for path, obj := range before {
		for k, v := range obj {
			if fmt.Sprint(after[path][k]) != fmt.Sprint(v) {
				t.Errorf("%s: field %s changed although its write failed", auditShortPath(path), k)
			}
		}
	}
	countsAfter := listCounts()
	for path, n := range countsBefore {
		if countsAfter[path] != n {
			t.Errorf("%s: %d objects after the failed writes, want %d", auditShortPath(path), countsAfter[path], n)
		}
	}
	if r := c.do("GET", tenantPath+"list/?custom_id=fail-new", nil); len(auditListed(t, "list by custom_id", r)) != 0 {
		t.Errorf("the tenant POSTed while the audit failed exists")
	}
	if r := c.do("GET", tenantPath+"list/?custom_id=fail-bulk", nil); len(auditListed(t, "list by custom_id", r)) != 0 {
		t.Errorf("the tenant bulk-created while the audit failed exists")
	}
	// With the audit working again, operations succeed and the chain is intact.
	if r := c.do("GET", auditObjPath(tenantPath, tenant), nil); r.status != http.StatusOK {
		t.Errorf("GET after the audit works again: status %d", r.status)
	}
	if r := c.do("DELETE", auditObjPath(tenantPath, doomed), nil); r.status != http.StatusNoContent {
		t.Errorf("DELETE after the audit works again: status %d", r.status)
	}
	if _, _, err := e.run("audit", "verify", "--customer", c.customerID); err != nil {
		t.Errorf("audit verify after the failures: %v", err)
	}
}

// auditShortPath names a path by its resource and no id.
func auditShortPath(path string) string {
	for _, p := range []string{piPath, tenantPath, subPath, orgPath, addressPath} {
		if strings.HasPrefix(path, p) {
			return p
		}
	}
	return "?"
}

// Concurrent reads are recorded in batches (group commit) and writes in
// their own transactions: under load, every request still makes exactly
// its entry, in one unbroken chain per customer.
func TestAuditConcurrentOperations(t *testing.T) {
	e := newEnv(t)
	customers := []*client{e.newCustomer("Audit Concurrent One AB"), e.newCustomer("Audit Concurrent Two AB")}
	const workers, perWorker = 8, 6
	type done struct {
		reqID  string
		action string
		id     string
	}
	results := make([][]done, len(customers))
	for ci, c := range customers {
		for i := range 4 {
			c.create(tenantPath, map[string]any{"first_name": personal(fmt.Sprintf("Auditconc-%d-%d", ci, i))})
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for ci, c := range customers {
		// The tenants to work on: read back through a slim list (no entry).
		r := c.do("GET", tenantPath+"list/?_slim=true", nil)
		objs := auditListed(t, "slim list", r)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perWorker {
					obj := objs[(w+i)%len(objs)]
					var r response
					action := "read"
					switch i % 3 {
					case 0, 1:
						r = c.do("GET", auditObjPath(tenantPath, obj), nil)
					default:
						action = "update"
						r = c.do("PATCH", auditObjPath(tenantPath, obj), map[string]any{"custom_id": fmt.Sprintf("w%d-%d", w, i)})
					}
					if r.status != http.StatusOK {
						t.Errorf("concurrent %s: status %d", action, r.status)
						continue
					}
					mu.Lock()
					results[ci] = append(results[ci], done{r.header.Get("X-Request-ID"), action, auditID(obj)})
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	for ci, c := range customers {
		entries := auditEntries(t, e, c.customerID)
		byReq := map[string][]auditLine{}
		for _, l := range entries {
			byReq[l.RequestID] = append(byReq[l.RequestID], l)
		}
		for _, d := range results[ci] {
			got := byReq[d.reqID]
			if len(got) != 1 {
				t.Errorf("customer %d: a concurrent %s made %d entries, want 1", ci, d.action, len(got))
				continue
			}
			if got[0].Action != d.action || !slices.Equal(got[0].ObjectIDs, []string{d.id}) || got[0].ClientID != c.id {
				t.Errorf("customer %d: a concurrent %s recorded as %s", ci, d.action, got[0].describe())
			}
		}
		if want := 4 + len(results[ci]); len(entries) != want {
			t.Errorf("customer %d: %d entries, want %d", ci, len(entries), want)
		}
	}
	res, err := auditVerify(t, e)
	if err != nil {
		t.Fatalf("audit verify after concurrent operations: %v", err)
	}
	for ci, c := range customers {
		if r := res[c.customerID]; !r.Intact || r.Entries != int64(4+len(results[ci])) {
			t.Errorf("customer %d: chain intact %v with %d entries, want intact with %d", ci, r.Intact, r.Entries, 4+len(results[ci]))
		}
	}
}

// A slim list carries no personal field, but one that filters, searches or
// orders on personal fields still tells something of them: it is recorded
// as a read of those fields, for each object it returns.
func TestAuditSlimListOnPersonalFields(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Audit Slim AB")
	ssns := auditSSNs(t)
	tenant := c.create(tenantPath, map[string]any{"first_name": personal("Auditslim-Tenant"), "ssn": ssns[0].Input})
	c.create(tenantPath, map[string]any{"first_name": personal("Auditslim-Other")})
	before := len(auditEntries(t, e, c.customerID))

	r := c.do("GET", tenantPath+"list/?_slim=true&ssn="+ssns[0].Canonical, nil)
	if r.status != http.StatusOK || len(r.objects) != 1 {
		t.Fatalf("slim list by ssn: status %d, %d objects", r.status, len(r.objects))
	}
	entries := auditEntries(t, e, c.customerID)
	if len(entries) != before+1 {
		t.Fatalf("%d new entries, want 1", len(entries)-before)
	}
	got := entries[len(entries)-1]
	if got.Action != "read" || len(got.ObjectIDs) != 1 || got.ObjectIDs[0] != auditID(tenant) ||
		len(got.Fields) != 1 || got.Fields[0] != "ssn" || got.RequestID != auditReqID(t, "slim list", r) {
		t.Errorf("slim list by ssn recorded %s; want a read of ssn for the one tenant", got.describe())
	}

	r = c.do("GET", tenantPath+"list/?_slim=true&_search=auditslim&_order_by=-last_name", nil)
	if r.status != http.StatusOK || len(r.objects) != 2 {
		t.Fatalf("slim search: status %d, %d objects", r.status, len(r.objects))
	}
	entries = auditEntries(t, e, c.customerID)
	got = entries[len(entries)-1]
	if len(entries) != before+2 || len(got.ObjectIDs) != 2 || !auditSameSet(got.Fields, []string{"first_name", "last_name", "corporate_name", "email", "phone_number"}) {
		t.Errorf("slim search recorded %s; want a read of the search and order fields for both tenants", got.describe())
	}
}

// A list that queries personal fields and returns no object still reads
// them: a lookup that finds nothing, or a count of matches past the last
// page, answers a question about the values, and asked over and over would
// recover them with no trace. Each is recorded as a read of the queried
// fields, naming no object. A list that queries no personal field and
// returns nothing records nothing.
func TestAuditQueriesThatReturnNothing(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Audit Nothing AB")
	ssns := auditSSNs(t)
	tenant := c.create(tenantPath, map[string]any{"first_name": personal("Auditnothing"), "ssn": ssns[0].Input})
	before := len(auditEntries(t, e, c.customerID))
	for i, tc := range []struct {
		query  string
		fields []string
	}{
		{"?ssn=" + ssns[1].Canonical + "&_slim=true", []string{"ssn"}},
		{"?first_name__istartswith=zzz", []string{"first_name"}},
		{"?id=" + auditID(tenant) + "&first_name__istartswith=auditn&_statistics=true&_page=2&_page_size=1", []string{"first_name"}},
		{"?_search=nobodyatall&_slim=true", []string{"first_name", "last_name", "corporate_name", "email", "phone_number"}},
	} {
		r := c.do("GET", tenantPath+tc.query, nil)
		if r.status != http.StatusOK {
			t.Fatalf("query %d: status %d", i, r.status)
		}
		entries := auditEntries(t, e, c.customerID)
		if len(entries) != before+i+1 {
			t.Fatalf("query %d: %d new entries, want 1", i, len(entries)-before-i)
		}
		got := entries[len(entries)-1]
		if got.Action != "read" || got.Resource != "Tenant" || len(got.ObjectIDs) != 0 ||
			!auditSameSet(got.Fields, tc.fields) || got.RequestID != auditReqID(t, "query", r) {
			t.Errorf("query %d recorded %s; want a read of %v naming no object", i, got.describe(), tc.fields)
		}
	}
	n := len(auditEntries(t, e, c.customerID))
	if r := c.do("GET", tenantPath+"?custom_id=nothing-here", nil); r.status != http.StatusOK || len(r.objects) != 0 {
		t.Fatalf("a clear-field list of nothing: status %d", r.status)
	}
	if got := len(auditEntries(t, e, c.customerID)); got != n {
		t.Errorf("a list of a clear field that returned nothing recorded %d entries, want none", got-n)
	}
}

// The request log gives an answer's size in whole KiB: the exact size of
// one object's answer, tied to the object by the request id in the audit
// trail, would tell the length of a person's values. An identity whose
// first name grew by 20 characters is logged with the same size.
func TestRequestLogHidesValueLengths(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Log Size AB")
	tenant := c.create(tenantPath, map[string]any{"first_name": personal("Kort")})
	path := tenantPath + auditID(tenant) + "/"
	size := func(requestID string) string {
		t.Helper()
		r := e.send("GET", path, nil, httpWithHeaders(c.headers, map[string]string{"X-Request-ID": requestID}), "")
		if r.status != http.StatusOK {
			t.Fatalf("GET: status %d", r.status)
		}
		re := regexp.MustCompile(`"bytes":(\d+)`)
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			for _, line := range strings.Split(suiteLog.String(), "\n") {
				if strings.Contains(line, requestID) && strings.Contains(line, `"msg":"request"`) {
					if m := re.FindStringSubmatch(line); m != nil {
						return m[1]
					}
				}
			}
		}
		t.Fatal("no request log line with a size")
		return ""
	}
	short := size("8f1c2d3e-4a5b-4c6d-8e7f-0a1b2c3d4e5f")
	if r := c.do("PATCH", path, map[string]any{"first_name": personal("Kort" + strings.Repeat("x", 20))}); r.status != http.StatusOK {
		t.Fatalf("PATCH: status %d", r.status)
	}
	long := size("9a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d")
	if short != long {
		t.Errorf("the request log sizes of one object's answer before and after its name grew: %s and %s bytes, want the same", short, long)
	}
	if n, _ := strconv.Atoi(short); n == 0 || n%1024 != 0 {
		t.Errorf("the request log gives %s bytes, want whole KiB", short)
	}
}

// A list that queries personal fields and is refused before any object
// goes out is recorded as a read of those fields, naming no object:
// whether it is refused (more matches than it may sort) depends on the
// values, so the refusal, asked over and over, tells of them too.
func TestAuditRefusedListsOfPersonalFields(t *testing.T) {
	e := newEnvWith(t, func(c *config.Config) {
		c.Limits = config.DefaultLimits
		c.Limits.SortRows = 2
	})
	c := e.newCustomer("Audit Refused AB")
	for i := range 3 {
		c.create(tenantPath, map[string]any{"first_name": personal(fmt.Sprintf("Refusedsort %d", i)), "last_name": personal("Refusedson")})
	}
	before := len(auditEntries(t, e, c.customerID))
	for i, tc := range []struct{ query, key string }{
		{"?first_name__istartswith=refusedsort&_order_by=last_name&_slim=true", "_order_by"},
		{"?first_name__istartswith=refusedsort&_order_by=last_name&_page=3&_page_size=1", "_page"},
	} {
		r := c.do("GET", tenantPath+tc.query, nil)
		errorKeys(t, r, tc.key)
		entries := auditEntries(t, e, c.customerID)
		if len(entries) != before+i+1 {
			t.Fatalf("refused query %d: %d new entries, want 1", i, len(entries)-before-i)
		}
		got := entries[len(entries)-1]
		if got.Action != "read" || got.Resource != "Tenant" || len(got.ObjectIDs) != 0 ||
			!auditSameSet(got.Fields, []string{"first_name", "last_name"}) || got.RequestID != auditReqID(t, "query", r) {
			t.Errorf("refused query %d recorded %s; want a read of first_name and last_name naming no object", i, got.describe())
		}
	}
}
