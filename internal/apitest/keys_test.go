package apitest

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"accounts/internal/cli"
	"accounts/internal/config"
	"accounts/internal/keystore"
	"accounts/internal/seal"
)

// keysData makes a customer with a few tenants and identities and returns
// the client and every created object's path.
func keysData(t *testing.T, e *env, tag string) (*client, []string) {
	c := e.newCustomer("Keys " + tag + " AB")
	var paths []string
	for i := range 3 {
		tenant := c.create(tenantPath, map[string]any{"first_name": personal("Keystenant-" + tag + "-" + string(rune('a'+i)))})
		pi := c.create(piPath, map[string]any{"tenant": ref(tenant), "last_name": personal("Keysidentity-" + tag + "-" + string(rune('a'+i)))})
		paths = append(paths, tenantPath+tenant["id"].(string)+"/", piPath+pi["id"].(string)+"/")
	}
	return c, paths
}

// keysAllOpen asserts every object answers 200 through a server.
func keysAllOpen(t *testing.T, e *env, base string, c *client, paths []string, when string) {
	t.Helper()
	for _, p := range paths {
		if r := e.sendTo(base, "GET", p, c.headers); r.status != http.StatusOK {
			t.Errorf("%s: GET of a stored object: status %d", when, r.status)
		}
	}
}

// keysStoredVersions returns the data key version of every sealed value.
func keysStoredVersions(t *testing.T, e *env) map[int]int {
	t.Helper()
	versions := map[int]int{}
	raw := e.rawDB()
	for _, table := range []string{"tenants", "subtenants", "protected_identities", "addresses"} {
		rows, err := raw.db.Query("SELECT sealed FROM " + table)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var sealed []byte
			if err := rows.Scan(&sealed); err != nil {
				t.Fatal(err)
			}
			v, ok := seal.Version(sealed)
			if !ok {
				t.Fatal("a sealed value has no version header")
			}
			versions[v]++
		}
		rows.Close()
	}
	return versions
}

// After rotate-master every record still opens and the old master key no
// longer opens any key; a server holding the new key and the old one as
// previous serves before, during and after the rotation.
func TestKeysRotateMaster(t *testing.T) {
	e := newEnv(t)
	c, paths := keysData(t, e, "M")
	oldKey := e.vars[config.EnvMasterKey]
	newKey := seal.GenerateMasterKey()

	location, err := e.cfg.KeyStoreLocation()
	if err != nil {
		t.Fatal(err)
	}
	rolling, err := cli.OpenApp(context.Background(), config.Config{Database: e.cfg.Database, KeyStore: location,
		MasterKey: newKey, PreviousMasterKey: oldKey}, slog.New(slog.NewJSONHandler(&suiteLog, nil)))
	if err != nil {
		t.Fatalf("opening a server with the new key and the old as previous: %v", err)
	}
	defer rolling.Close()
	srv := httptest.NewServer(rolling.Handler)
	defer srv.Close()
	keysAllOpen(t, e, srv.URL, c, paths, "before the rotation")

	keyFile := filepath.Join(e.dir, "new.key")
	if err := os.WriteFile(keyFile, []byte(newKey), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.run("keys", "rotate-master", "--new-key-file", keyFile); err != nil {
		t.Fatalf("keys rotate-master: %v", err)
	}
	keysAllOpen(t, e, srv.URL, c, paths, "after the rotation, same server")

	after, err := cli.OpenApp(context.Background(), config.Config{Database: e.cfg.Database, KeyStore: location, MasterKey: newKey},
		slog.New(slog.NewJSONHandler(&suiteLog, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	srv2 := httptest.NewServer(after.Handler)
	defer srv2.Close()
	keysAllOpen(t, e, srv2.URL, c, paths, "after the rotation, new key only")

	ks, err := keystore.Open(context.Background(), location)
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	all, err := ks.All(context.Background())
	if err != nil || len(all) == 0 {
		t.Fatalf("key store: %d keys, err %v", len(all), err)
	}
	old, _ := seal.ParseMasterKey(oldKey)
	fresh, _ := seal.ParseMasterKey(newKey)
	for _, w := range all {
		if _, err := old.Rewrap(w, old); err == nil {
			t.Error("the old master key still opens a customer key")
		}
		if _, err := fresh.Rewrap(w, fresh); err != nil {
			t.Error("the new master key does not open a customer key")
		}
	}
	// Running it again (as after an interruption) finds nothing left to do.
	out, _, err := e.run("keys", "rotate-master", "--new-key-file", keyFile)
	if err != nil || !strings.Contains(out, "rewrapped 0 keys") {
		t.Errorf("a second rotate-master: err %v; want success with nothing rewrapped", err)
	}
	keysAllOpen(t, e, srv2.URL, c, paths, "after a second rotation")
}

// After rotate-data no sealed value uses the old version, everything still
// opens, and an interrupted rotation resumes instead of starting another.
func TestKeysRotateData(t *testing.T) {
	e := newEnv(t)
	c, paths := keysData(t, e, "D")
	if v := keysStoredVersions(t, e); len(v) != 1 || v[1] == 0 {
		t.Fatalf("before: versions %v, want all 1", v)
	}
	out, _, err := e.run("keys", "rotate-data")
	if err != nil {
		t.Fatalf("keys rotate-data: %v", err)
	}
	if !strings.Contains(out, "done") {
		t.Errorf("rotate-data printed no progress")
	}
	if v := keysStoredVersions(t, e); len(v) != 1 || v[2] == 0 {
		t.Errorf("after: versions %v, want all 2", v)
	}
	keysAllOpen(t, e, e.server.URL, c, paths, "after rotate-data (a server that loaded version 1)")

	// An interrupted rotation: version 3 exists, values are still under 2.
	location, _ := e.cfg.KeyStoreLocation()
	ks, err := keystore.Open(context.Background(), location)
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	master, _ := seal.ParseMasterKey(e.vars[config.EnvMasterKey])
	check, err := ks.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.Put(context.Background(), check, []seal.WrappedKey{master.NewDataKey(c.customerID, 3)}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.run("keys", "rotate-data", "--customer", c.customerID); err != nil {
		t.Fatalf("resuming rotate-data: %v", err)
	}
	if v := keysStoredVersions(t, e); len(v) != 1 || v[3] == 0 {
		t.Errorf("after resuming: versions %v, want all 3 (resumed, not a new version 4)", v)
	}
	keys, err := ks.CustomerKeys(context.Background(), c.customerID)
	if err != nil {
		t.Fatal(err)
	}
	newest := 0
	for _, k := range keys {
		if k.Purpose == seal.PurposeData {
			newest = max(newest, k.Version)
		}
	}
	if newest != 3 {
		t.Errorf("newest data key version %d after resuming, want 3", newest)
	}
	keysAllOpen(t, e, e.server.URL, c, paths, "after the resumed rotation")
}

// keysReadyz is a server's /readyz status.
func keysReadyz(t *testing.T, base string) int {
	t.Helper()
	resp, err := checkedClient(t).Get(base + "/readyz")
	if err != nil {
		t.Fatalf("/readyz: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// keysEventually waits up to 10 s for /readyz to answer want.
func keysEventually(t *testing.T, base string, want int, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := keysReadyz(t, base)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: /readyz %d, want %d", what, got, want)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A server whose master key no longer opens the customers' keys (the key
// was rotated and it was not restarted with the new one) says so on
// /readyz, so a load balancer stops sending it requests; a server holding
// the new key and the old one as previous stays ready throughout.
func TestKeysReadyzWhenTheMasterKeyNoLongerOpens(t *testing.T) {
	e := newEnv(t)
	c, paths := keysData(t, e, "R")
	oldKey := e.vars[config.EnvMasterKey]
	newKey := seal.GenerateMasterKey()
	rolling := e.sibling(func(cfg *config.Config) { cfg.MasterKey, cfg.PreviousMasterKey = newKey, oldKey })
	for _, base := range []string{e.server.URL, rolling.server.URL} {
		if got := keysReadyz(t, base); got != http.StatusOK {
			t.Fatalf("/readyz before the rotation: %d", got)
		}
	}

	keyFile := filepath.Join(e.dir, "new.key")
	if err := os.WriteFile(keyFile, []byte(newKey), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.run("keys", "rotate-master", "--new-key-file", keyFile); err != nil {
		t.Fatalf("keys rotate-master: %v", err)
	}
	keysEventually(t, e.server.URL, http.StatusServiceUnavailable, "a server with only the old key")
	keysEventually(t, rolling.server.URL, http.StatusOK, "a server with the new key and the old as previous")
	keysAllOpen(t, e, rolling.server.URL, c, paths, "after the rotation, new key and old as previous")

	// A key store whose check value is not the master key's, with keys
	// that do not open either: the same.
	fresh := e.sibling(func(cfg *config.Config) { cfg.MasterKey, cfg.PreviousMasterKey = newKey, "" })
	keysEventually(t, fresh.server.URL, http.StatusOK, "a server with the new key")
	raw, err := sql.Open("sqlite", "file:"+keysStoreFile(t, e))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec("UPDATE customer_keys SET wrapped = ?", bytes.Repeat([]byte{9}, 60)); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec("UPDATE master_key_check SET check_value = ?", bytes.Repeat([]byte{9}, 60)); err != nil {
		t.Fatal(err)
	}
	keysEventually(t, fresh.server.URL, http.StatusServiceUnavailable, "a server whose key store no longer matches its key")
}

// keysStoreFile is the path of the test's key store, a file on both engines.
func keysStoreFile(t *testing.T, e *env) string {
	t.Helper()
	location, err := e.cfg.KeyStoreLocation()
	if err != nil {
		t.Fatal(err)
	}
	return location
}
