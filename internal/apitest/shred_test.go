package apitest

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"accounts/internal/cli"
	"accounts/internal/config"
	"accounts/internal/keystore"
	"accounts/internal/seal"
)

// shredCustomer makes a customer with a tenant and its protected identity,
// both carrying distinctive values, and returns the client and the ids.
func shredCustomer(t *testing.T, e *env, tag string) (*client, string, []string) {
	c := e.newCustomer("Shred " + tag + " AB")
	values := []string{personal("Shredtenant-" + tag + "-Qxv"), personal("Shredidentity-" + tag + "-Qxv"), personal("shred." + strings.ToLower(tag) + ".qxv@example.se")}
	tenant := c.create(tenantPath, map[string]any{"first_name": values[0]})
	pi := c.create(piPath, map[string]any{"tenant": ref(tenant), "first_name": values[1], "email": values[2]})
	return c, pi["id"].(string), values
}

// After `customer delete`, a copy of the data taken before the delete,
// opened with the key store as it is after the delete, yields none of that
// customer's personal values; another customer's data still opens.
func TestCustomerDeleteShredsEveryCopy(t *testing.T) {
	e := newEnv(t)
	a, aID, aValues := shredCustomer(t, e, "A")
	b, bID, bValues := shredCustomer(t, e, "B")

	// The copy: every sealed row as stored before the delete and, on
	// SQLite, a whole copy of the database file.
	raw := e.rawDB()
	type sealedRow struct {
		customer, table, id string
		sealed              []byte
	}
	var copied []sealedRow
	for _, table := range []string{"protected_identities", "tenants"} {
		rows, err := raw.db.Query("SELECT customer_id, id, sealed FROM " + table)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			r := sealedRow{table: table}
			if err := rows.Scan(&r.customer, &r.id, &r.sealed); err != nil {
				t.Fatal(err)
			}
			copied = append(copied, r)
		}
		rows.Close()
	}
	if len(copied) != 4 {
		t.Fatalf("copied %d sealed rows, want 4", len(copied))
	}
	copyPath := filepath.Join(e.dir, "before-delete.db")
	if !onPostgres() {
		if _, err := raw.db.Exec("VACUUM INTO ?", copyPath); err != nil {
			t.Fatalf("copying the database: %v", err)
		}
	}

	out, _, err := e.run("customer", "delete", "--id", a.customerID, "--yes", "--json")
	if err != nil {
		t.Fatalf("customer delete: %v", err)
	}
	a.awaitRefused(piPath+aID+"/", time.Now())
	var deleted struct {
		ID        string `json:"id"`
		DeletedAt string `json:"deleted_at"`
	}
	if json.Unmarshal([]byte(out), &deleted) != nil || deleted.ID != a.customerID || deleted.DeletedAt == "" {
		t.Errorf("customer delete printed no {id, deleted_at}")
	}

	// The service: A's client is gone with A; B is untouched.
	if r := a.do("GET", piPath+aID+"/", nil); r.status != http.StatusUnauthorized {
		t.Errorf("the deleted customer's client: status %d, want 401", r.status)
	}
	if r := b.do("GET", piPath+bID+"/", nil); r.status != http.StatusOK || r.obj["first_name"] != bValues[1] {
		t.Errorf("another customer's identity after the delete: status %d", r.status)
	}

	// The copy, opened with the key store as it is now.
	location, err := e.cfg.KeyStoreLocation()
	if err != nil {
		t.Fatal(err)
	}
	ks, err := keystore.Open(context.Background(), location)
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	master, err := seal.ParseMasterKey(e.vars[config.EnvMasterKey])
	if err != nil {
		t.Fatal(err)
	}
	ring := seal.NewKeyring(master, nil, ks)
	if _, err := ring.Customer(context.Background(), a.customerID); err == nil {
		t.Fatal("the deleted customer's keys still unwrap")
	}
	bKeys, err := ring.Customer(context.Background(), b.customerID)
	if err != nil {
		t.Fatalf("another customer's keys: %v", err)
	}
	resources := map[string]string{"protected_identities": "Protectedidentity", "tenants": "Tenant"}
	opened := 0
	for _, r := range copied {
		if r.customer != b.customerID {
			continue
		}
		plain, err := bKeys.Open(resources[r.table], r.id, r.sealed)
		if err != nil {
			t.Errorf("another customer's copied %s row no longer opens", r.table)
			continue
		}
		for _, v := range aValues {
			if strings.Contains(string(plain), v) {
				t.Error("another customer's row holds a value of the deleted customer")
			}
		}
		opened++
	}
	if opened != 2 {
		t.Errorf("opened %d of another customer's copied rows, want 2", opened)
	}

	if !onPostgres() {
		// The whole file copy, served with the key store as it is now.
		app, err := cli.OpenApp(context.Background(), config.Config{Database: copyPath, MasterKey: e.vars[config.EnvMasterKey], KeyStore: location},
			slog.New(slog.NewJSONHandler(&suiteLog, nil)))
		if err != nil {
			t.Fatalf("opening the copy: %v", err)
		}
		defer app.Close()
		srv := httptest.NewServer(app.Handler)
		defer srv.Close()
		for _, path := range []string{piPath + aID + "/", piPath, tenantPath} {
			r := e.sendTo(srv.URL, "GET", path, a.headers)
			for _, v := range aValues {
				if strings.Contains(string(r.raw), v) {
					t.Errorf("GET %s on the copy reveals a value of the deleted customer", path)
				}
			}
			if r.status != http.StatusInternalServerError {
				t.Errorf("GET %s on the copy: status %d, want 500 (no key opens it)", path, r.status)
			}
		}
		if r := e.sendTo(srv.URL, "GET", piPath+bID+"/", b.headers); r.status != http.StatusOK || !strings.Contains(string(r.raw), bValues[1]) {
			t.Errorf("another customer's identity on the copy: status %d", r.status)
		}
	}

	// The deletion is in the deleted customer's audit trail, which stays intact.
	list, _, err := e.run("audit", "list", "--customer", a.customerID, "--json")
	if err != nil || !strings.Contains(list, `"resource":"Customer"`) || !strings.Contains(list, `"action":"delete"`) {
		t.Errorf("the deletion is not in the audit trail (err %v)", err)
	}
	if _, _, err := e.run("audit", "verify", "--customer", a.customerID); err != nil {
		t.Errorf("audit verify after the delete: %v", err)
	}
}
