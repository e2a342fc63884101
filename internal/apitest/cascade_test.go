package apitest

import (
	"net/http"
	"reflect"
	"testing"
)

func cascadePath(path string, obj map[string]any) string { return path + obj["id"].(string) + "/" }

func cascadeDelete(t *testing.T, c *client, label, path string) {
	t.Helper()
	r := c.do("DELETE", path, nil)
	if r.status != http.StatusNoContent {
		t.Fatalf("DELETE %s: status %d, want 204", label, r.status)
	}
	if len(r.raw) != 0 {
		t.Errorf("DELETE %s: 204 with a body", label)
	}
}

func cascadeGone(t *testing.T, c *client, label, path string) {
	t.Helper()
	r := c.do("GET", path, nil)
	if r.status != http.StatusNotFound {
		t.Errorf("GET %s after delete: status %d, want 404", label, r.status)
	}
}

// cascadeGet GETs an object that must exist.
func cascadeGet(t *testing.T, c *client, label, path string) map[string]any {
	t.Helper()
	r := c.do("GET", path, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET %s: status %d, want 200", label, r.status)
	}
	return r.obj
}

// cascadeExpect checks that after has the same fields as before, except the
// nulled ones, which must be null (present, with a null value).
func cascadeExpect(t *testing.T, label string, before, after map[string]any, nulled ...string) {
	t.Helper()
	isNulled := map[string]bool{}
	for _, k := range nulled {
		isNulled[k] = true
		if before[k] == nil {
			t.Fatalf("%s: field %q was not set before the delete; the test proves nothing", label, k)
		}
		v, ok := after[k]
		if !ok {
			t.Errorf("%s: field %q missing after the delete", label, k)
		} else if v != nil {
			t.Errorf("%s: field %q not null after the delete", label, k)
		}
	}
	for k, v := range before {
		if isNulled[k] {
			continue
		}
		if !reflect.DeepEqual(after[k], v) {
			t.Errorf("%s: field %q changed by the delete", label, k)
		}
	}
	if len(after) != len(before) {
		t.Errorf("%s: %d fields after the delete, %d before", label, len(after), len(before))
	}
}

func TestCascadeDeleteTenantDeletesIdentity(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Cascade Tenant AB")
	f := c.fixtures()
	pi := c.create(piPath, map[string]any{
		"tenant": ref(f.tenant), "organization": ref(f.org), "current_registered_address": ref(f.address),
		"first_name": personal("Cascade-Tekla"),
	})
	// An identity of another tenant must survive.
	otherTenant := c.create(tenantPath, map[string]any{"first_name": personal("Cascade-Other-Tage")})
	otherPI := c.create(piPath, map[string]any{"tenant": ref(otherTenant), "first_name": personal("Cascade-Other-Tilde")})
	subPI := c.create(piPath, map[string]any{"sub_tenant": ref(f.sub)})

	cascadeDelete(t, c, "tenant", cascadePath(tenantPath, f.tenant))
	cascadeGone(t, c, "tenant", cascadePath(tenantPath, f.tenant))
	cascadeGone(t, c, "identity of the deleted tenant", cascadePath(piPath, pi))
	if r := c.do("DELETE", cascadePath(piPath, pi), nil); r.status != http.StatusNotFound {
		t.Errorf("DELETE of the cascaded identity: status %d, want 404", r.status)
	}
	if got := cascadeGet(t, c, "identity of another tenant", cascadePath(piPath, otherPI)); !reflect.DeepEqual(got, otherPI) {
		t.Errorf("identity of another tenant changed")
	}
	if got := cascadeGet(t, c, "identity of the subtenant", cascadePath(piPath, subPI)); !reflect.DeepEqual(got, subPI) {
		t.Errorf("identity of the subtenant changed")
	}
	// What the identity pointed to is untouched.
	cascadeGet(t, c, "organization", cascadePath(orgPath, f.org))
	cascadeGet(t, c, "address", cascadePath(addressPath, f.address))
	// The tenant is gone: a new identity can't refer to it.
	errorKeys(t, c.do("POST", piPath, map[string]any{"tenant": ref(f.tenant)}), "tenant")
}

func TestCascadeDeleteSubtenantDeletesIdentity(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Cascade Sub AB")
	f := c.fixtures()
	pi := c.create(piPath, map[string]any{"sub_tenant": ref(f.sub), "last_name": personal("Cascade-Sigvard")})
	otherSub := c.create(subPath, map[string]any{"first_name": personal("Cascade-Other-Saga")})
	otherPI := c.create(piPath, map[string]any{"sub_tenant": ref(otherSub)})
	tenantPI := c.create(piPath, map[string]any{"tenant": ref(f.tenant)})

	cascadeDelete(t, c, "subtenant", cascadePath(subPath, f.sub))
	cascadeGone(t, c, "subtenant", cascadePath(subPath, f.sub))
	cascadeGone(t, c, "identity of the deleted subtenant", cascadePath(piPath, pi))
	if got := cascadeGet(t, c, "identity of another subtenant", cascadePath(piPath, otherPI)); !reflect.DeepEqual(got, otherPI) {
		t.Errorf("identity of another subtenant changed")
	}
	if got := cascadeGet(t, c, "identity of the tenant", cascadePath(piPath, tenantPI)); !reflect.DeepEqual(got, tenantPI) {
		t.Errorf("identity of the tenant changed")
	}
}

func TestCascadeDeleteAddressNullsReferences(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Cascade Address AB")
	f := c.fixtures()
	addr := f.address
	keep := c.create(addressPath, map[string]any{
		"street": personal("Cascadekvarngatan"), "postal_code": personal("CA 771"), "city": personal("Cascadeby"), "country": "Sverige",
	})
	pi := c.create(piPath, map[string]any{
		"tenant":                     ref(f.tenant),
		"first_name":                 personal("Cascade-Ada"),
		"current_registered_address": ref(addr),
		"previous_address":           ref(addr),
		"future_address":             ref(addr),
		"organization":               ref(f.org),
	})
	tenant := c.create(tenantPath, map[string]any{
		"first_name":                 personal("Cascade-Alvar"),
		"current_registered_address": ref(addr),
		"future_address":             ref(keep),
	})
	tenant2 := c.create(tenantPath, map[string]any{
		"last_name":                  personal("Cascade-Alma"),
		"current_registered_address": ref(keep),
		"future_address":             ref(addr),
	})
	sub := c.create(subPath, map[string]any{
		"first_name":                 personal("Cascade-Axel"),
		"current_registered_address": ref(addr),
		"future_address":             ref(addr),
	})
	// An identity that points to another address only.
	pi2 := c.create(piPath, map[string]any{"tenant": ref(tenant), "previous_address": ref(keep), "current_registered_address": ref(addr)})
	before := map[string]map[string]any{}
	for name, o := range map[string]struct {
		path string
		obj  map[string]any
	}{"pi": {piPath, pi}, "pi2": {piPath, pi2}, "tenant": {tenantPath, tenant}, "tenant2": {tenantPath, tenant2}, "sub": {subPath, sub}} {
		before[name] = cascadeGet(t, c, name, cascadePath(o.path, o.obj))
	}

	cascadeDelete(t, c, "address", cascadePath(addressPath, addr))
	cascadeGone(t, c, "address", cascadePath(addressPath, addr))

	cascadeExpect(t, "identity", before["pi"], cascadeGet(t, c, "identity", cascadePath(piPath, pi)),
		"current_registered_address", "previous_address", "future_address")
	cascadeExpect(t, "second identity", before["pi2"], cascadeGet(t, c, "second identity", cascadePath(piPath, pi2)),
		"current_registered_address")
	cascadeExpect(t, "tenant", before["tenant"], cascadeGet(t, c, "tenant", cascadePath(tenantPath, tenant)),
		"current_registered_address")
	cascadeExpect(t, "second tenant", before["tenant2"], cascadeGet(t, c, "second tenant", cascadePath(tenantPath, tenant2)),
		"future_address")
	cascadeExpect(t, "subtenant", before["sub"], cascadeGet(t, c, "subtenant", cascadePath(subPath, sub)),
		"current_registered_address", "future_address")
	cascadeGet(t, c, "other address", cascadePath(addressPath, keep))
	// The fixture tenant (no address reference) still exists with its identity.
	cascadeGet(t, c, "fixture tenant", cascadePath(tenantPath, f.tenant))
}

func TestCascadeDeleteOrganizationNullsReferences(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Cascade Org AB")
	parent := c.create(orgPath, map[string]any{"name": "Cascade Parent", "custom_id": "parent"})
	grandparent := c.create(orgPath, map[string]any{"name": "Cascade Grandparent"})
	if r := c.do("PATCH", cascadePath(orgPath, parent), map[string]any{"organization": ref(grandparent)}); r.status != http.StatusOK {
		t.Fatalf("PATCH parent's parent: status %d", r.status)
	}
	other := c.create(orgPath, map[string]any{"name": "Cascade Other"})
	child := c.create(orgPath, map[string]any{"name": "Cascade Child", "organization": ref(parent), "custom_id": "child"})
	addr := c.create(addressPath, map[string]any{
		"street": personal("Cascadeorggatan"), "postal_code": personal("CO 552"), "city": personal("Cascadeorgstad"), "country": "Sverige",
		"organization": ref(parent),
	})
	tenant := c.create(tenantPath, map[string]any{"first_name": personal("Cascade-Olle"), "organization": ref(parent)})
	sub := c.create(subPath, map[string]any{"first_name": personal("Cascade-Olga"), "organization": ref(parent)})
	pi := c.create(piPath, map[string]any{
		"tenant": ref(tenant), "organization": ref(parent), "current_registered_address": ref(addr),
		"first_name": personal("Cascade-Oskar"),
	})
	// Objects that point to another organization keep their reference.
	otherTenant := c.create(tenantPath, map[string]any{"first_name": personal("Cascade-Ove"), "organization": ref(other)})

	paths := map[string]string{
		"child":       cascadePath(orgPath, child),
		"address":     cascadePath(addressPath, addr),
		"tenant":      cascadePath(tenantPath, tenant),
		"subtenant":   cascadePath(subPath, sub),
		"identity":    cascadePath(piPath, pi),
		"otherTenant": cascadePath(tenantPath, otherTenant),
		"grandparent": cascadePath(orgPath, grandparent),
		"other":       cascadePath(orgPath, other),
	}
	before := map[string]map[string]any{}
	for name, p := range paths {
		before[name] = cascadeGet(t, c, name, p)
	}

	cascadeDelete(t, c, "organization", cascadePath(orgPath, parent))
	cascadeGone(t, c, "organization", cascadePath(orgPath, parent))

	for _, name := range []string{"child", "address", "tenant", "subtenant", "identity"} {
		cascadeExpect(t, name, before[name], cascadeGet(t, c, name, paths[name]), "organization")
	}
	for _, name := range []string{"otherTenant", "grandparent", "other"} {
		if got := cascadeGet(t, c, name, paths[name]); !reflect.DeepEqual(got, before[name]) {
			t.Errorf("%s changed by deleting an organization it does not refer to", name)
		}
	}
	// The name of the deleted organization is free again.
	c.create(orgPath, map[string]any{"name": "Cascade Parent"})
}

func TestCascadeDeleteTwice(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Cascade Twice AB")
	f := c.fixtures()
	pi := c.create(piPath, map[string]any{"tenant": ref(f.tenant)})
	objects := []struct {
		name, path string
	}{
		{"identity", cascadePath(piPath, pi)},
		{"tenant", cascadePath(tenantPath, f.tenant)},
		{"subtenant", cascadePath(subPath, f.sub)},
		{"address", cascadePath(addressPath, f.address)},
		{"organization", cascadePath(orgPath, f.org)},
	}
	for _, o := range objects {
		cascadeDelete(t, c, o.name, o.path)
		for i := 0; i < 2; i++ {
			r := c.do("DELETE", o.path, nil)
			if r.status != http.StatusNotFound {
				t.Errorf("DELETE %s again (%d): status %d, want 404", o.name, i+1, r.status)
			} else if !reflect.DeepEqual(r.obj, map[string]any{"detail": "Not found."}) {
				t.Errorf("DELETE %s again: 404 body is not the contract's (keys %v)", o.name, keys(r.obj))
			}
		}
		cascadeGone(t, c, o.name, o.path)
		if r := c.do("PATCH", o.path, map[string]any{"custom_id": "after-delete"}); r.status != http.StatusNotFound {
			t.Errorf("PATCH %s after delete: status %d, want 404", o.name, r.status)
		}
	}
}
