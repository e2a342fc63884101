package apitest

// Bulk writes of the contract (section 3 "Bulk write"): POST B list/ with a
// JSON array; items without id are created, items with id are partial
// updates; all or nothing, one error object per item on failure.
//
// Failure messages name items by index and fields by name, never a value.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// postBulk sends a bulk write to path's list/ endpoint.
func (c *client) postBulk(path string, body any) response {
	c.e.t.Helper()
	return c.do("POST", path+"list/", body)
}

// bulkItemErrors asserts a 400 whose body is an array of n error objects and
// returns them.
func bulkItemErrors(t *testing.T, r response, n int) []map[string]any {
	t.Helper()
	if r.status != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", r.status)
	}
	if r.objects == nil {
		t.Fatalf("the 400 body is not an array (keys %v)", keys(r.obj))
	}
	if len(r.objects) != n {
		t.Fatalf("the 400 body has %d error objects, want %d", len(r.objects), n)
	}
	out := make([]map[string]any, n)
	for i, o := range r.objects {
		m, ok := o.(map[string]any)
		if !ok {
			t.Fatalf("error %d is not an object", i)
		}
		out[i] = m
	}
	return out
}

// expectItemErrorKeys checks per-item error keys: want[i] nil means {}.
func expectItemErrorKeys(t *testing.T, errs []map[string]any, want [][]string) {
	t.Helper()
	for i, m := range errs {
		got := keys(m)
		sort.Strings(got)
		w := append([]string{}, want[i]...)
		sort.Strings(w)
		if len(w) == 0 {
			if len(got) != 0 {
				t.Errorf("item %d: error keys %v, want {}", i, got)
			}
			continue
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("item %d: error keys %v, want %v", i, got, w)
		}
	}
}

// bulkObjects asserts a 201 whose body is an array of n objects.
func bulkObjects(t *testing.T, r response, n int) []map[string]any {
	t.Helper()
	if r.status != http.StatusCreated {
		t.Fatalf("status %d, want 201 (body is array: %v, keys %v)", r.status, r.objects != nil, keys(r.obj))
	}
	if r.objects == nil || len(r.objects) != n {
		t.Fatalf("the 201 body is not an array of %d objects", n)
	}
	out := make([]map[string]any, n)
	for i, o := range r.objects {
		m, ok := o.(map[string]any)
		if !ok {
			t.Fatalf("element %d is not an object", i)
		}
		out[i] = m
	}
	return out
}

// objectsByID reads every object of path, keyed by id.
func (c *client) objectsByID(path string) map[string]map[string]any {
	c.e.t.Helper()
	out := map[string]map[string]any{}
	for _, o := range c.listObjects(path, "") {
		out[o["id"].(string)] = o
	}
	return out
}

// expectUnchanged asserts path holds exactly the objects of before.
func (c *client) expectUnchanged(label string, path string, before map[string]map[string]any) {
	t := c.e.t
	t.Helper()
	after := c.objectsByID(path)
	if len(after) != len(before) {
		t.Errorf("%s: %s has %d objects, had %d: something was written", label, pathLabel(path), len(after), len(before))
	}
	for id, o := range before {
		if !reflect.DeepEqual(after[id], o) {
			t.Errorf("%s: a %s object changed although the batch failed", label, pathLabel(path))
		}
	}
}

func TestBulkMixedBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.newCustomer("Bulk mixed AB")
	a := c.create(tenantPath, map[string]any{
		"first_name": personal("Blkfirst-A"), "last_name": personal("Blklast-A"), "custom_id": "EX-A",
	})
	b := c.create(tenantPath, map[string]any{"first_name": personal("Blkfirst-B"), "custom_id": "EX-B"})
	r := c.postBulk(tenantPath, []map[string]any{
		{"first_name": personal("Blknew-0"), "custom_id": "NEW-0"},
		{"id": a["id"], "last_name": personal("Blkchanged-A"), "custom_id": "EX-A2"},
		{"first_name": personal("Blknew-2"), "custom_id": "NEW-2", "email": personal("blk2@blk-example.com"), "ssn_is_coordination_number": true},
		{"id": b["id"], "email": personal("blkb@blk-example.com"), "created_at": "2000-01-01T00:00:00.000000Z"},
	})
	out := bulkObjects(t, r, 4)
	full := c.listObjects(tenantPath, "id="+a["id"].(string))[0]
	for i, o := range out {
		if len(o) != len(full) {
			t.Errorf("item %d: %d fields, want every field of the resource (%d)", i, len(o), len(full))
		}
	}
	// Creates: new, distinct ids, fields as sent, in request order.
	for _, i := range []int{0, 2} {
		id, _ := out[i]["id"].(string)
		if _, err := uuid.Parse(id); err != nil || id == a["id"] || id == b["id"] {
			t.Errorf("item %d: a create has no new id", i)
		}
		if out[i]["custom_id"] != fmt.Sprintf("NEW-%d", i) {
			t.Errorf("item %d: custom_id not as sent: objects not in request order?", i)
		}
	}
	if out[0]["id"] == out[2]["id"] {
		t.Errorf("two creates got the same id")
	}
	if out[0]["first_name"] != "Blknew-0" || out[2]["first_name"] != "Blknew-2" || out[2]["email"] != "blk2@blk-example.com" {
		t.Errorf("a created object does not show the values sent")
	}
	if out[0]["ssn_is_coordination_number"] != false || out[2]["ssn_is_coordination_number"] != true {
		t.Errorf("ssn_is_coordination_number: default or value not applied in a bulk create")
	}
	// Updates: same id, partial.
	if out[1]["id"] != a["id"] || out[3]["id"] != b["id"] {
		t.Fatalf("an update does not keep its id")
	}
	if out[1]["last_name"] != "Blkchanged-A" || out[1]["custom_id"] != "EX-A2" || out[1]["first_name"] != "Blkfirst-A" {
		t.Errorf("item 1: the update is not a partial update showing the changes")
	}
	if out[3]["email"] != "blkb@blk-example.com" || out[3]["first_name"] != "Blkfirst-B" || out[3]["custom_id"] != "EX-B" {
		t.Errorf("item 3: the update is not a partial update showing the changes")
	}
	if out[1]["created_at"] != a["created_at"] || out[3]["created_at"] != b["created_at"] {
		t.Errorf("an update changed created_at")
	}
	// What was returned is what is stored.
	for i, o := range out {
		g := c.do("GET", tenantPath+o["id"].(string)+"/", nil)
		if g.status != http.StatusOK || !reflect.DeepEqual(g.obj, o) {
			t.Errorf("item %d: GET status %d or the stored object differs from the returned one", i, g.status)
		}
	}
	if n := len(c.listObjects(tenantPath, "")); n != 4 {
		t.Errorf("%d tenants after the batch, want 4", n)
	}

	// The same on the other resources, references included.
	org := c.create(orgPath, map[string]any{"name": "Bulkorg existing"})
	orgs := bulkObjects(t, c.postBulk(orgPath, []map[string]any{
		{"name": "Bulkorg new", "organization": ref(org)},
		{"id": org["id"], "custom_id": "BO-1"},
	}), 2)
	if orgs[0]["name"] != "Bulkorg new" || !reflect.DeepEqual(orgs[0]["organization"], ref(org)) ||
		orgs[1]["id"] != org["id"] || orgs[1]["custom_id"] != "BO-1" || orgs[1]["name"] != "Bulkorg existing" {
		t.Errorf("organization bulk: objects do not show the batch")
	}
	adrs := bulkObjects(t, c.postBulk(addressPath, []map[string]any{
		{"street": personal("Bulkgatan"), "postal_code": personal("121 21"), "city": personal("Bulkby"), "country": "Sverige", "organization": ref(org)},
		{"street": personal("Bulkvägen"), "postal_code": personal("131 31"), "city": personal("Bulkstad"), "country": "Norge", "latitude": 10.5},
	}), 2)
	if adrs[0]["city"] != "Bulkby" || adrs[1]["country"] != "Norge" || adrs[1]["latitude"] != 10.5 {
		t.Errorf("address bulk: objects do not show the batch")
	}
	sub := c.create(subPath, map[string]any{"last_name": personal("Bulkunder")})
	subs := bulkObjects(t, c.postBulk(subPath, []map[string]any{
		{"id": sub["id"], "is_active": false},
		{"first_name": personal("Bulkundra")},
	}), 2)
	if subs[0]["is_active"] != false || subs[0]["last_name"] != "Bulkunder" || subs[1]["is_active"] != true {
		t.Errorf("subtenant bulk: objects do not show the batch")
	}
	pis := bulkObjects(t, c.postBulk(piPath, []map[string]any{
		{"tenant": ref(a), "first_name": personal("Bulkskyddad"), "current_registered_address": ref(adrs[0])},
		{"sub_tenant": ref(sub), "organization": ref(org)},
	}), 2)
	if !reflect.DeepEqual(pis[0]["tenant"], ref(a)) || !reflect.DeepEqual(pis[0]["current_registered_address"], ref(adrs[0])) ||
		!reflect.DeepEqual(pis[1]["sub_tenant"], ref(sub)) || pis[1]["tenant"] != nil {
		t.Errorf("protectedidentity bulk: objects do not show the batch")
	}
	upd := bulkObjects(t, c.postBulk(piPath, []map[string]any{
		{"id": pis[0]["id"], "last_name": personal("Bulkskyddadsson")},
	}), 1)
	if upd[0]["first_name"] != "Bulkskyddad" || upd[0]["last_name"] != "Bulkskyddadsson" || !reflect.DeepEqual(upd[0]["tenant"], ref(a)) {
		t.Errorf("protectedidentity bulk update is not partial")
	}
}

func TestBulkAllOrNothing(t *testing.T) {
	t.Parallel()
	pn := loadPersonnummer(t)
	badSSN := pn.invalid(t)
	e := newEnv(t)
	c := e.newCustomer("Bulk atomic AB")
	a := c.create(tenantPath, map[string]any{"first_name": personal("Atomfirst-A"), "custom_id": "AT-A"})
	b := c.create(tenantPath, map[string]any{"first_name": personal("Atomfirst-B"), "custom_id": "AT-B"})
	before := c.objectsByID(tenantPath)
	badEmail := personal("atom-not-an-email")

	// Item 2 of 4 fails validation.
	r := c.postBulk(tenantPath, []map[string]any{
		{"first_name": personal("Atomnew-0")},
		{"id": a["id"], "last_name": personal("Atomchanged-A")},
		{"first_name": personal("Atomnew-2"), "email": badEmail},
		{"id": b["id"], "custom_id": "AT-B2"},
	})
	expectItemErrorKeys(t, bulkItemErrors(t, r, 4), [][]string{nil, nil, {"email"}, nil})
	if strings.Contains(string(r.raw), badEmail) {
		t.Errorf("the bulk error body echoes a submitted value")
	}
	c.expectUnchanged("invalid email at item 2", tenantPath, before)

	// The failure is found only while writing (a reference that does not
	// exist), after three good items went to the database.
	r = c.postBulk(tenantPath, []map[string]any{
		{"first_name": personal("Atomnew-0")},
		{"id": a["id"], "last_name": personal("Atomchanged-A")},
		{"first_name": personal("Atomnew-2")},
		{"first_name": personal("Atomnew-3"), "organization": map[string]any{"id": uuid.NewString()}},
	})
	expectItemErrorKeys(t, bulkItemErrors(t, r, 4), [][]string{nil, nil, nil, {"organization"}})
	c.expectUnchanged("unknown reference at item 3", tenantPath, before)

	// The first item fails; the later good ones are not written either.
	r = c.postBulk(tenantPath, []map[string]any{
		{"id": a["id"], "ssn": badSSN},
		{"first_name": personal("Atomnew-1")},
		{"id": b["id"], "first_name": personal("Atomchanged-B")},
	})
	expectItemErrorKeys(t, bulkItemErrors(t, r, 3), [][]string{{"ssn"}, nil, nil})
	if strings.Contains(string(r.raw), badSSN) {
		t.Errorf("the bulk error body echoes an identity number")
	}
	c.expectUnchanged("invalid ssn at item 0", tenantPath, before)

	// Several failing items: each at its index.
	r = c.postBulk(tenantPath, []map[string]any{
		{"last_name": ""},
		{"first_name": personal("Atomnew-1")},
		{"id": b["id"], "first_name": nil, "last_name": nil, "corporate_name": nil},
		{"first_name": personal("Atomnew-3"), "birth_date": "not-a-date"},
	})
	errs := bulkItemErrors(t, r, 4)
	if len(errs[0]) == 0 || len(errs[1]) != 0 || len(errs[2]) == 0 {
		t.Errorf("several failing items: errors not at the failing indexes (keys %v %v %v)", keys(errs[0]), keys(errs[1]), keys(errs[2]))
	}
	expectItemErrorKeys(t, errs[3:], [][]string{{"birth_date"}})
	c.expectUnchanged("several failing items", tenantPath, before)

	// And a good batch afterwards still works.
	bulkObjects(t, c.postBulk(tenantPath, []map[string]any{{"first_name": personal("Atomnew-ok")}}), 1)
	if n := len(c.listObjects(tenantPath, "")); n != len(before)+1 {
		t.Errorf("%d tenants after a good batch, want %d", n, len(before)+1)
	}
}

func TestBulkUniqueInsideBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.newCustomer("Bulk unique AB")
	tn := c.create(tenantPath, map[string]any{"first_name": personal("Unikfirst")})
	tn2 := c.create(tenantPath, map[string]any{"first_name": personal("Unikfirst-2")})
	sub := c.create(subPath, map[string]any{"first_name": personal("Unikunder")})

	// Two identities for one tenant in one batch.
	r := c.postBulk(piPath, []map[string]any{
		{"tenant": ref(tn), "first_name": personal("Unikskydd-0")},
		{"tenant": ref(tn), "first_name": personal("Unikskydd-1")},
	})
	expectItemErrorKeys(t, bulkItemErrors(t, r, 2), [][]string{nil, {"tenant"}})
	if n := len(c.listObjects(piPath, "")); n != 0 {
		t.Errorf("%d protected identities after a failed batch, want 0", n)
	}

	// The same for a sub-tenant, with a good item in between.
	r = c.postBulk(piPath, []map[string]any{
		{"sub_tenant": ref(sub)},
		{"tenant": ref(tn2)},
		{"sub_tenant": ref(sub)},
	})
	expectItemErrorKeys(t, bulkItemErrors(t, r, 3), [][]string{nil, nil, {"sub_tenant"}})
	if n := len(c.listObjects(piPath, "")); n != 0 {
		t.Errorf("%d protected identities after a failed batch, want 0", n)
	}

	// Against an existing identity.
	c.create(piPath, map[string]any{"tenant": ref(tn)})
	r = c.postBulk(piPath, []map[string]any{{"tenant": ref(tn2)}, {"tenant": ref(tn)}})
	expectItemErrorKeys(t, bulkItemErrors(t, r, 2), [][]string{nil, {"tenant"}})
	if n := len(c.listObjects(piPath, "")); n != 1 {
		t.Errorf("%d protected identities after a failed batch, want 1", n)
	}

	// Organization names inside one batch.
	r = c.postBulk(orgPath, []map[string]any{{"name": "Unik org"}, {"name": "Annan org"}, {"name": "Unik org"}})
	expectItemErrorKeys(t, bulkItemErrors(t, r, 3), [][]string{nil, nil, {"name"}})
	if n := len(c.listObjects(orgPath, "")); n != 0 {
		t.Errorf("%d organizations after a failed batch, want 0", n)
	}
}

func TestBulkOtherCustomerID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.newCustomer("Bulk tenancy A AB")
	b := e.newCustomer("Bulk tenancy B AB")
	own := a.create(tenantPath, map[string]any{"first_name": personal("Egenfirst")})
	aorg := a.create(orgPath, map[string]any{"name": "Egen org"})
	theirs := b.create(tenantPath, map[string]any{"first_name": personal("Frammandfirst"), "custom_id": "B-1"})
	theirsBefore := b.do("GET", tenantPath+theirs["id"].(string)+"/", nil).obj
	before := a.objectsByID(tenantPath)
	cases := []struct {
		name string
		id   any
	}{
		{"another customer's object", theirs["id"]},
		{"an unknown id", uuid.NewString()},
		{"an object of another resource", aorg["id"]},
		{"a malformed id", "notauuid"},
		{"a non-string id", 42},
	}
	for i, tc := range cases {
		r := a.postBulk(tenantPath, []map[string]any{
			{"first_name": personal("Egennew")},
			{"id": tc.id, "last_name": personal("Kapad")},
			{"id": own["id"], "custom_id": "A-2"},
		})
		if r.status != http.StatusBadRequest {
			t.Errorf("case %d (%s): status %d, want 400", i, tc.name, r.status)
			continue
		}
		expectItemErrorKeys(t, bulkItemErrors(t, r, 3), [][]string{nil, {"id"}, nil})
		a.expectUnchanged(tc.name, tenantPath, before)
	}
	if g := b.do("GET", tenantPath+theirs["id"].(string)+"/", nil); g.status != http.StatusOK || !reflect.DeepEqual(g.obj, theirsBefore) {
		t.Errorf("customer B's object changed: status %d", g.status)
	}
	// An item that updates no object is that error alone, whatever else
	// it sends (as a single update of no object is a 404): invalid fields,
	// or a reference to no object. An item that updates an object gets
	// every error of its fields.
	for i, id := range []any{theirs["id"], uuid.NewString()} {
		r := a.postBulk(tenantPath, []map[string]any{
			{"id": id, "first_name": 5},
			{"id": id, "last_name": "", "organization": map[string]any{"id": uuid.NewString()}},
			{"id": own["id"], "first_name": 5, "organization": map[string]any{"id": uuid.NewString()}},
		})
		expectItemErrorKeys(t, bulkItemErrors(t, r, 3), [][]string{{"id"}, {"id"}, {"first_name", "organization"}})
		a.expectUnchanged(fmt.Sprintf("invalid items of no object %d", i), tenantPath, before)
	}
	// A reference to another customer's object inside a bulk item.
	r := a.postBulk(piPath, []map[string]any{{"tenant": ref(own)}, {"tenant": ref(theirs)}})
	expectItemErrorKeys(t, bulkItemErrors(t, r, 2), [][]string{nil, {"tenant"}})
	if n := len(a.listObjects(piPath, "")); n != 0 {
		t.Errorf("%d protected identities after a failed batch, want 0", n)
	}
}

func TestBulkItemLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.newCustomer("Bulk limit AB")
	items := func(n int, tag string) []map[string]any {
		out := make([]map[string]any, n)
		for i := range out {
			out[i] = map[string]any{"name": fmt.Sprintf("Limitorg %s %04d", tag, i)}
		}
		return out
	}
	r := c.postBulk(orgPath, items(1001, "over"))
	if r.status != http.StatusBadRequest {
		t.Fatalf("1001 items: status %d, want 400", r.status)
	}
	if n := len(c.listObjects(orgPath, "")); n != 0 {
		t.Errorf("1001 items: %d organizations written, want 0", n)
	}
	out := bulkObjects(t, c.postBulk(orgPath, items(1000, "max")), 1000)
	for i, o := range out {
		if o["name"] != fmt.Sprintf("Limitorg max %04d", i) {
			t.Errorf("1000 items: object %d not in request order", i)
			break
		}
	}
	if n := len(c.listObjects(orgPath, "")); n != 1000 {
		t.Errorf("1000 items: %d organizations written, want 1000", n)
	}
}

func TestBulkBodyNotAnArray(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.newCustomer("Bulk shape AB")
	bodies := []string{
		`{"name": "Formorg"}`,
		`"Formorg"`,
		`42`,
		`null`,
		`true`,
		`[{"name": "Formorg"}`,
		``,
	}
	for i, body := range bodies {
		r := c.postBulk(orgPath, body)
		if r.status != http.StatusBadRequest || r.obj == nil {
			t.Errorf("body %d: status %d (an array: %v), want 400 with one error object", i, r.status, r.objects != nil)
		}
	}
	if n := len(c.listObjects(orgPath, "")); n != 0 {
		t.Errorf("%d organizations written by malformed bulk bodies, want 0", n)
	}
}

// TestBulkItemNotAnObject: an array whose items are not all objects is a
// 400 with one error object per item, as any failing bulk write: the
// items that are not objects (null included, never taken as {}) get
// non_field_errors, the others their own errors or {}.
func TestBulkItemNotAnObject(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.newCustomer("Bulk items AB")
	nfe := []string{"non_field_errors"}
	for i, tc := range []struct {
		body string
		want [][]string
	}{
		{`[1, 2]`, [][]string{nfe, nfe}},
		{`["Formorg"]`, [][]string{nfe}},
		{`[[{"name": "Formorg"}]]`, [][]string{nfe}},
		{`[{"name": "Formorg"}, 7]`, [][]string{nil, nfe}},
		{`[null]`, [][]string{nfe}},
		{`[{"name": "Formorg"}, null, {"name": ""}, true]`, [][]string{nil, nfe, {"name"}, nfe}},
	} {
		r := c.postBulk(orgPath, tc.body)
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			expectItemErrorKeys(t, bulkItemErrors(t, r, len(tc.want)), tc.want)
		})
	}
	if n := len(c.listObjects(orgPath, "")); n != 0 {
		t.Errorf("%d organizations written by bulk bodies with bad items, want 0", n)
	}
}

// TestBulkEmpty: an empty array writes nothing and answers 201 with an
// empty JSON array.
func TestBulkEmpty(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.newCustomer("Bulk empty AB")
	for _, path := range []string{orgPath, piPath} {
		r := c.postBulk(path, `[]`)
		bulkObjects(t, r, 0)
		if !json.Valid(r.raw) {
			t.Errorf("%s: the 201 body is not JSON", pathLabel(path))
		}
	}
}

func TestBulkUnknownField(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.newCustomer("Bulk unknown AB")
	a := c.create(tenantPath, map[string]any{"first_name": personal("Okandfirst")})
	before := c.objectsByID(tenantPath)
	r := c.postBulk(tenantPath, []map[string]any{
		{"first_name": personal("Okandnew-0")},
		{"first_name": personal("Okandnew-1"), "bogus": 1},
		{"id": a["id"], "nonsense": true},
		{"id": a["id"], "is_active": false}, // a Subtenant field
	})
	expectItemErrorKeys(t, bulkItemErrors(t, r, 4), [][]string{nil, {"bogus"}, {"nonsense"}, {"is_active"}})
	c.expectUnchanged("unknown fields", tenantPath, before)
}

func TestBulkReadOnlyClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.newCustomer("Bulk read AB")
	reader := e.newClient(c.customerID, "read")
	existing := c.create(orgPath, map[string]any{"name": "Lasorg"})
	before := c.objectsByID(orgPath)
	for i, body := range []any{
		[]map[string]any{{"name": "Lasorg ny"}},
		[]map[string]any{{"id": existing["id"], "custom_id": "R-1"}},
		[]map[string]any{{"name": ""}},
	} {
		r := reader.postBulk(orgPath, body)
		if r.status != http.StatusForbidden {
			t.Errorf("body %d: status %d, want 403", i, r.status)
		}
	}
	c.expectUnchanged("read-only client", orgPath, before)
	// The read client can still list.
	if got := reader.listObjects(orgPath, ""); len(got) != 1 {
		t.Errorf("the read client lists %d organizations, want 1", len(got))
	}
}
