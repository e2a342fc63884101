package apitest

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// tenancyValidSSN returns the i-th valid test number of the shared test data
// (input form and canonical form).
func tenancyValidSSN(t *testing.T, i int) (input, canonical string) {
	t.Helper()
	v := loadPersonnummer(t)
	if i >= len(v.Valid) {
		t.Fatalf("personnummer test data has %d valid numbers, want index %d", len(v.Valid), i)
	}
	personal(v.Valid[i].Input, v.Valid[i].Canonical)
	return v.Valid[i].Input, v.Valid[i].Canonical
}

// tenancySet is one object of each of the five resources of one customer.
type tenancySet struct {
	org, tenant, sub, address, pi map[string]any
}

func (s tenancySet) each() []struct {
	name, path string
	obj        map[string]any
} {
	return []struct {
		name, path string
		obj        map[string]any
	}{
		{"organization", orgPath, s.org},
		{"tenant", tenantPath, s.tenant},
		{"subtenant", subPath, s.sub},
		{"address", addressPath, s.address},
		{"protectedidentity", piPath, s.pi},
	}
}

func tenancyObjPath(path string, obj map[string]any) string { return path + obj["id"].(string) + "/" }

// tenancyCreateSet creates a full, cross-referencing set of objects for c.
func tenancyCreateSet(t *testing.T, c *client, tag string, ssnIndex int) tenancySet {
	t.Helper()
	ssnIn, _ := tenancyValidSSN(t, ssnIndex)
	s := tenancySet{}
	s.org = c.create(orgPath, map[string]any{"name": "Tenancy Org " + tag, "custom_id": "org-" + tag})
	s.address = c.create(addressPath, map[string]any{
		"street":        personal("Tenancygatan" + tag),
		"street_number": "12B",
		"postal_code":   personal("TN" + tag + " 11"),
		"city":          personal("Tenancystad" + tag),
		"country":       "Sverige",
		"organization":  ref(s.org),
	})
	s.tenant = c.create(tenantPath, map[string]any{
		"first_name":                 personal("Tenancy-Tora-" + tag),
		"email":                      personal("tora." + strings.ToLower(tag) + "@tenancy.example.se"),
		"organization":               ref(s.org),
		"current_registered_address": ref(s.address),
	})
	s.sub = c.create(subPath, map[string]any{
		"last_name":      personal("Tenancy-Sune-" + tag),
		"organization":   ref(s.org),
		"future_address": ref(s.address),
	})
	s.pi = c.create(piPath, map[string]any{
		"tenant":                     ref(s.tenant),
		"organization":               ref(s.org),
		"first_name":                 personal("Tenancy-Petra-" + tag),
		"ssn":                        ssnIn,
		"phone_number":               personal("+4670" + map[string]string{"A": "1112233", "B": "4445566"}[tag]),
		"current_registered_address": ref(s.address),
	})
	return s
}

// tenancySnapshot GETs every object of a set as its owner sees it.
func tenancySnapshot(t *testing.T, c *client, s tenancySet) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, o := range s.each() {
		r := c.do("GET", tenancyObjPath(o.path, o.obj), nil)
		if r.status != http.StatusOK {
			t.Fatalf("owner GET %s: status %d", o.name, r.status)
		}
		out[o.name] = r.obj
	}
	return out
}

func tenancyCompare(t *testing.T, who string, before, after map[string]map[string]any) {
	t.Helper()
	for name, b := range before {
		a := after[name]
		for k := range b {
			if !reflect.DeepEqual(a[k], b[k]) {
				t.Errorf("%s: %s field %q changed", who, name, k)
			}
		}
		if len(a) != len(b) {
			t.Errorf("%s: %s has %d fields, had %d", who, name, len(a), len(b))
		}
	}
}

func tenancyNotFound(t *testing.T, label string, r response) {
	t.Helper()
	if r.status != http.StatusNotFound {
		t.Errorf("%s: status %d, want 404", label, r.status)
		return
	}
	if !reflect.DeepEqual(r.obj, map[string]any{"detail": "Not found."}) {
		t.Errorf("%s: 404 body is not the contract's body (keys %v)", label, keys(r.obj))
	}
}

// tenancyPatchBody is a valid PATCH for each resource (if the object were visible).
var tenancyPatchBody = map[string]map[string]any{
	"organization":      {"custom_id": "intruder"},
	"tenant":            {"custom_id": "intruder"},
	"subtenant":         {"custom_id": "intruder"},
	"address":           {"custom_id": "intruder"},
	"protectedidentity": {"custom_id": "intruder"},
}

func TestTenancyOtherCustomerSeesNothing(t *testing.T) {
	e := newEnv(t)
	a := e.newCustomer("Tenancy A AB")
	b := e.newCustomer("Tenancy B AB")
	setA := tenancyCreateSet(t, a, "A", 2)
	setB := tenancyCreateSet(t, b, "B", 3)
	beforeA := tenancySnapshot(t, a, setA)
	beforeB := tenancySnapshot(t, b, setB)
	for _, o := range setA.each() {
		p := tenancyObjPath(o.path, o.obj)
		tenancyNotFound(t, "B GET A's "+o.name, b.do("GET", p, nil))
		tenancyNotFound(t, "B PATCH A's "+o.name, b.do("PATCH", p, tenancyPatchBody[o.name]))
		tenancyNotFound(t, "B DELETE A's "+o.name, b.do("DELETE", p, nil))
	}
	// And the other way round.
	for _, o := range setB.each() {
		p := tenancyObjPath(o.path, o.obj)
		tenancyNotFound(t, "A GET B's "+o.name, a.do("GET", p, nil))
		tenancyNotFound(t, "A DELETE B's "+o.name, a.do("DELETE", p, nil))
	}
	// A read client of B sees nothing of A's either.
	bRead := e.newClient(b.customerID, "read")
	for _, o := range setA.each() {
		tenancyNotFound(t, "B's read client GET A's "+o.name, bRead.do("GET", tenancyObjPath(o.path, o.obj), nil))
	}
	// The 404 for another customer's object equals the 404 for a missing one.
	missing := b.do("GET", piPath+"6f1c2b1e-3a4d-4c5e-8f90-123456789abc/", nil)
	other := b.do("GET", tenancyObjPath(piPath, setA.pi), nil)
	if missing.status != other.status || string(missing.raw) != string(other.raw) {
		t.Errorf("another customer's object is distinguishable from a missing one: status %d vs %d", other.status, missing.status)
	}
	tenancyCompare(t, "A after B's attempts", beforeA, tenancySnapshot(t, a, setA))
	tenancyCompare(t, "B after A's attempts", beforeB, tenancySnapshot(t, b, setB))
}

func TestTenancyNoCrossCustomerReferences(t *testing.T) {
	e := newEnv(t)
	a := e.newCustomer("Tenancy Ref A AB")
	b := e.newCustomer("Tenancy Ref B AB")
	setA := tenancyCreateSet(t, a, "A", 2)
	beforeA := tenancySnapshot(t, a, setA)

	// B's own objects. bTenant has no identity yet, so it is free for creates.
	bOrg := b.create(orgPath, map[string]any{"name": "Tenancy Ref B Org"})
	bTenant := b.create(tenantPath, map[string]any{"first_name": personal("Tenancyref-Bodil")})
	bSub := b.create(subPath, map[string]any{"first_name": personal("Tenancyref-Bert")})
	bAddr := b.create(addressPath, map[string]any{
		"street": personal("Tenancyrefvägen"), "postal_code": personal("TR 999"), "city": personal("Tenancyrefby"), "country": "Sverige",
	})
	bPI := b.create(piPath, map[string]any{"sub_tenant": ref(bSub), "first_name": personal("Tenancyref-Berit")})
	bSet := tenancySet{org: bOrg, tenant: bTenant, sub: bSub, address: bAddr, pi: bPI}
	beforeB := tenancySnapshot(t, b, bSet)

	creates := []struct {
		name, path string
		body       map[string]any
		key        string
	}{
		{"identity tenant", piPath, map[string]any{"tenant": ref(setA.tenant)}, "tenant"},
		{"identity sub_tenant", piPath, map[string]any{"sub_tenant": ref(setA.sub)}, "sub_tenant"},
		{"identity organization", piPath, map[string]any{"tenant": ref(bTenant), "organization": ref(setA.org)}, "organization"},
		{"identity current_registered_address", piPath, map[string]any{"tenant": ref(bTenant), "current_registered_address": ref(setA.address)}, "current_registered_address"},
		{"identity previous_address", piPath, map[string]any{"tenant": ref(bTenant), "previous_address": ref(setA.address)}, "previous_address"},
		{"identity future_address", piPath, map[string]any{"tenant": ref(bTenant), "future_address": ref(setA.address)}, "future_address"},
		{"tenant organization", tenantPath, map[string]any{"first_name": personal("Tenancyref-X1"), "organization": ref(setA.org)}, "organization"},
		{"tenant current_registered_address", tenantPath, map[string]any{"first_name": personal("Tenancyref-X2"), "current_registered_address": ref(setA.address)}, "current_registered_address"},
		{"tenant future_address", tenantPath, map[string]any{"first_name": personal("Tenancyref-X3"), "future_address": ref(setA.address)}, "future_address"},
		{"subtenant organization", subPath, map[string]any{"first_name": personal("Tenancyref-X4"), "organization": ref(setA.org)}, "organization"},
		{"subtenant current_registered_address", subPath, map[string]any{"first_name": personal("Tenancyref-X5"), "current_registered_address": ref(setA.address)}, "current_registered_address"},
		{"subtenant future_address", subPath, map[string]any{"first_name": personal("Tenancyref-X6"), "future_address": ref(setA.address)}, "future_address"},
		{"address organization", addressPath, map[string]any{
			"street": personal("Tenancyrefgränd"), "postal_code": personal("TR 888"), "city": personal("Tenancyrefköping"), "country": "Sverige",
			"organization": ref(setA.org),
		}, "organization"},
		{"organization parent", orgPath, map[string]any{"name": "Tenancy Ref Child", "organization": ref(setA.org)}, "organization"},
	}
	for _, c := range creates {
		t.Run("create "+c.name, func(t *testing.T) {
			errorKeys(t, b.do("POST", c.path, c.body), c.key)
		})
	}
	// The refused creates left B's tenant free and the organization name unused.
	b.create(orgPath, map[string]any{"name": "Tenancy Ref Child"})

	patches := []struct {
		name, path string
		obj        map[string]any
		body       map[string]any
		key        string
	}{
		{"identity tenant", piPath, bPI, map[string]any{"tenant": ref(setA.tenant), "sub_tenant": nil}, "tenant"},
		{"identity sub_tenant", piPath, bPI, map[string]any{"sub_tenant": ref(setA.sub)}, "sub_tenant"},
		{"identity organization", piPath, bPI, map[string]any{"organization": ref(setA.org)}, "organization"},
		{"identity current_registered_address", piPath, bPI, map[string]any{"current_registered_address": ref(setA.address)}, "current_registered_address"},
		{"identity previous_address", piPath, bPI, map[string]any{"previous_address": ref(setA.address)}, "previous_address"},
		{"identity future_address", piPath, bPI, map[string]any{"future_address": ref(setA.address)}, "future_address"},
		{"tenant organization", tenantPath, bTenant, map[string]any{"organization": ref(setA.org)}, "organization"},
		{"tenant current_registered_address", tenantPath, bTenant, map[string]any{"current_registered_address": ref(setA.address)}, "current_registered_address"},
		{"tenant future_address", tenantPath, bTenant, map[string]any{"future_address": ref(setA.address)}, "future_address"},
		{"subtenant organization", subPath, bSub, map[string]any{"organization": ref(setA.org)}, "organization"},
		{"subtenant current_registered_address", subPath, bSub, map[string]any{"current_registered_address": ref(setA.address)}, "current_registered_address"},
		{"subtenant future_address", subPath, bSub, map[string]any{"future_address": ref(setA.address)}, "future_address"},
		{"address organization", addressPath, bAddr, map[string]any{"organization": ref(setA.org)}, "organization"},
		{"organization parent", orgPath, bOrg, map[string]any{"organization": ref(setA.org)}, "organization"},
	}
	for _, p := range patches {
		t.Run("patch "+p.name, func(t *testing.T) {
			errorKeys(t, b.do("PATCH", tenancyObjPath(p.path, p.obj), p.body), p.key)
		})
	}

	// A reference to another customer's object fails exactly like one to a
	// missing object: same status and keys.
	missing := b.do("POST", piPath, map[string]any{"tenant": map[string]any{"id": "6f1c2b1e-3a4d-4c5e-8f90-123456789abc"}})
	errorKeys(t, missing, "tenant")

	tenancyCompare(t, "B's objects after refused patches", beforeB, tenancySnapshot(t, b, bSet))
	tenancyCompare(t, "A's objects", beforeA, tenancySnapshot(t, a, setA))
	// B's tenant is still free: the refused identity creates made nothing.
	b.create(piPath, map[string]any{"tenant": ref(bTenant)})
}

func TestTenancyMalformedPK(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Tenancy PK AB")
	set := tenancyCreateSet(t, c, "A", 2)
	before := tenancySnapshot(t, c, set)
	for _, o := range set.each() {
		id := o.obj["id"].(string)
		for i, pk := range []string{"abc", strings.ReplaceAll(id, "-", ""), id + "0", id[:len(id)-1], "{" + id + "}", "urn:uuid:" + id} {
			p := o.path + pk + "/"
			tenancyNotFound(t, o.name+" GET malformed pk case "+string(rune('0'+i)), c.do("GET", p, nil))
			tenancyNotFound(t, o.name+" PATCH malformed pk case "+string(rune('0'+i)), c.do("PATCH", p, tenancyPatchBody[o.name]))
			tenancyNotFound(t, o.name+" DELETE malformed pk case "+string(rune('0'+i)), c.do("DELETE", p, nil))
		}
	}
	tenancyCompare(t, "after malformed pk requests", before, tenancySnapshot(t, c, set))
}
