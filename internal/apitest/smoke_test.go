package apitest

import (
	"net/http"
	"testing"
)

func TestCreateGetUpdateDeleteProtectedIdentity(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Smoke AB")
	f := c.fixtures()
	pi := c.create(piPath, map[string]any{
		"tenant":     ref(f.tenant),
		"first_name": personal("Smokey-Firstname"),
		"ssn":        "19121212-1212",
	})
	if pi["ssn"] != "191212121212" {
		t.Errorf("ssn not returned in canonical form")
	}
	for _, k := range []string{"id", "created_at", "tenant", "sub_tenant", "organization", "first_name", "last_name",
		"email", "phone_number", "ssn", "birth_date", "custom_id", "current_registered_address", "previous_address", "future_address"} {
		if _, ok := pi[k]; !ok {
			t.Errorf("response lacks field %q", k)
		}
	}
	id := pi["id"].(string)
	got := c.do("GET", piPath+id+"/", nil)
	if got.status != http.StatusOK || got.obj["first_name"] != pi["first_name"] {
		t.Fatalf("GET: status %d", got.status)
	}
	upd := c.do("PATCH", piPath+id+"/", map[string]any{"last_name": personal("Smokey-Lastname")})
	if upd.status != http.StatusOK || upd.obj["last_name"] != "Smokey-Lastname" || upd.obj["first_name"] != "Smokey-Firstname" {
		t.Fatalf("PATCH: status %d", upd.status)
	}
	if del := c.do("DELETE", piPath+id+"/", nil); del.status != http.StatusNoContent || len(del.raw) != 0 {
		t.Fatalf("DELETE: status %d", del.status)
	}
	if got := c.do("GET", piPath+id+"/", nil); got.status != http.StatusNotFound {
		t.Fatalf("GET after delete: status %d", got.status)
	}
}
