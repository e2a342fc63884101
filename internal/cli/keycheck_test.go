package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"accounts/internal/config"
	"accounts/internal/keystore"
	"accounts/internal/masterkey"
	"accounts/internal/seal"
	"accounts/internal/store/storetest"

	"github.com/google/uuid"

	"github.com/jackc/pgx/v5"
)

// keysRefused runs a command that must be refused: a *UsageError of one
// line, returned at once (a serve that starts instead is stopped after a
// few seconds and reported).
func keysRefused(t *testing.T, c *cliEnv, what string, args ...string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	log := &serveLog{}
	err := Run(ctx, args, IO{Env: c.env, Stdout: io.Discard, Stderr: log})
	if ctx.Err() != nil {
		t.Errorf("%s: %s started instead of refusing", what, args[0])
		return err
	}
	cliUsage(t, what, err)
	if log.count("listening") != 0 {
		t.Errorf("%s: serve listened before refusing", what)
	}
	return err
}

// keysStored counts the wrapped keys in a key store, behind the service's back.
func keysStored(t *testing.T, location string) int {
	t.Helper()
	ks, err := keystore.Open(context.Background(), location)
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	all, err := ks.All(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(all)
}

// keysLocation is where c's key store is.
func keysLocation(t *testing.T, c *cliEnv) string {
	t.Helper()
	if ks := c.vars[config.EnvKeyStore]; ks != "" {
		return ks
	}
	return c.vars[config.EnvDatabase] + ".keys"
}

// A key file that goes missing while the key store holds keys is never
// replaced by a new key: every command that needs the key refuses, and the
// file is not created again. With the key file back, everything works.
func TestKeysMissingKeyFileIsRefused(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "accounts.db")
	c := &cliEnv{t: t, vars: map[string]string{config.EnvDatabase: db}}
	cu := c.customer("Missing Key AB")
	keyFile := db + ".key"
	kept := filepath.Join(t.TempDir(), "kept.key")
	if err := os.Rename(keyFile, kept); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"serve", "--addr", "127.0.0.1:0"},
		{"customer", "create", "--name", "Under A New Key AB"},
		{"keys", "rotate-data"},
		{"keys", "rotate-master", "--new-key-file", kept},
	} {
		err := keysRefused(t, c, strings.Join(args[:2], " ")+" without the key file", args...)
		if !errors.Is(err, masterkey.ErrKeyFileMissing) {
			t.Errorf("%s without the key file: err %v, want ErrKeyFileMissing", args[0], err)
		}
		if _, err := os.Stat(keyFile); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s generated a new key file", args[0])
		}
	}
	if n := keysStored(t, db+".keys"); n != 2 {
		t.Errorf("the key store holds %d keys, want the first customer's 2", n)
	}

	// The key store gone too, while the database holds a customer.
	if err := os.Rename(db+".keys", filepath.Join(dir, "keys.moved")); err != nil {
		t.Fatal(err)
	}
	if err := keysRefused(t, c, "serve without key file and key store", "serve", "--addr", "127.0.0.1:0"); !errors.Is(err, masterkey.ErrKeysMissing) {
		t.Errorf("serve without key file and key store: err %v, want ErrKeysMissing", err)
	}
	if _, err := os.Stat(db + ".keys"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("serve created a key store while the database holds customers")
	}
	if _, err := os.Stat(keyFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("serve generated a new key file while the database holds customers")
	}
	if err := os.Rename(filepath.Join(dir, "keys.moved"), db+".keys"); err != nil {
		t.Fatal(err)
	}

	if err := os.Rename(kept, keyFile); err != nil {
		t.Fatal(err)
	}
	var cl cliClient
	c.runJSON(&cl, "client", "create", "--customer", cu.ID, "--json")
	s := c.serve("--addr", "127.0.0.1:0")
	keysCreateAddress(t, "http://"+s.addr, cl, http.StatusCreated)
	s.stopCleanly(t)
}

// keysCreateAddress creates an address as the client and checks the status.
func keysCreateAddress(t *testing.T, base string, cl cliClient, want int) {
	t.Helper()
	body := strings.NewReader(`{"street": "Nyckelgatan", "postal_code": "111 22", "city": "Stockholm", "country": "Sverige"}`)
	req, _ := http.NewRequest("POST", base+"/common/address/", body)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range cl.Headers {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("POST address: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Errorf("POST address: status %d, want %d", resp.StatusCode, want)
	}
}

// keysEngines runs fn on SQLite, and on PostgreSQL when it is configured
// (the key store is a file beside the test then, apart from the data).
func keysEngines(t *testing.T, fn func(t *testing.T, c *cliEnv)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, newCLIEnv(t)) })
	t.Run("postgres", func(t *testing.T) {
		c := newCLIEnv(t)
		c.vars[config.EnvDatabase] = storetest.PostgresURL(t)
		c.vars[config.EnvKeyStore] = filepath.Join(t.TempDir(), "keys.db")
		fn(t, c)
	})
}

// Another deployment's key store, under the same master key, is refused by
// every command that uses the keys: its keys are none of this database's
// customers', so serving would fail every request while ready, and a new
// customer's keys would go to the other deployment. Nothing is written to
// either key store.
func TestKeysAnotherDeploymentsKeyStoreIsRefused(t *testing.T) {
	keysEngines(t, func(t *testing.T, c *cliEnv) {
		c.customer("Here AB")
		other := newCLIEnv(t)
		other.vars[config.EnvMasterKey] = c.vars[config.EnvMasterKey]
		other.customer("Elsewhere AB")
		theirs := keysLocation(t, other)
		ours := keysLocation(t, c)
		c.vars[config.EnvKeyStore] = theirs
		for _, args := range [][]string{
			{"serve", "--addr", "127.0.0.1:0"},
			{"customer", "create", "--name", "Crossed AB"},
			{"keys", "rotate-data"},
		} {
			if err := keysRefused(t, c, args[0]+" with another deployment's key store", args...); !errors.Is(err, masterkey.ErrKeysMissing) {
				t.Errorf("%s with another deployment's key store: err %v, want ErrKeysMissing", args[0], err)
			}
		}
		if n := keysStored(t, theirs); n != 2 {
			t.Errorf("the other deployment's key store holds %d keys, want its customer's 2", n)
		}
		c.vars[config.EnvKeyStore] = ours
		if _, _, err := c.run("customer", "create", "--name", "Back Home AB"); err != nil {
			t.Errorf("customer create with its own key store: %v", err)
		}
	})
}

// A master key other than the one the key store's keys are wrapped under
// is refused at start by every command that uses it; no customer is made
// under it, so the key store never holds keys wrapped under two master keys.
func TestKeysWrongMasterKeyIsRefused(t *testing.T) {
	keysEngines(t, func(t *testing.T, c *cliEnv) {
		cu := c.customer("Right Key AB")
		var cl cliClient
		c.runJSON(&cl, "client", "create", "--customer", cu.ID, "--json")
		right := c.vars[config.EnvMasterKey]
		location := keysLocation(t, c)

		c.vars[config.EnvMasterKey] = seal.GenerateMasterKey()
		for _, args := range [][]string{
			{"serve", "--addr", "127.0.0.1:0"},
			{"customer", "create", "--name", "Wrong Key AB"},
			{"keys", "rotate-data"},
			{"keys", "rotate-master", "--new-key-file", keysNewKeyFile(t)},
		} {
			if err := keysRefused(t, c, args[0]+" with a wrong key", args...); !errors.Is(err, masterkey.ErrWrongKey) {
				t.Errorf("%s with a wrong key: err %v, want ErrWrongKey", args[0], err)
			}
		}
		if n := keysStored(t, location); n != 2 {
			t.Errorf("the key store holds %d keys, want the first customer's 2", n)
		}
		// The wrong key as the previous one does not help either.
		c.vars[config.EnvPreviousMasterKey] = seal.GenerateMasterKey()
		keysRefused(t, c, "serve with two wrong keys", "serve", "--addr", "127.0.0.1:0")
		delete(c.vars, config.EnvPreviousMasterKey)

		c.vars[config.EnvMasterKey] = right
		s := c.serve("--addr", "127.0.0.1:0")
		keysCreateAddress(t, "http://"+s.addr, cl, http.StatusCreated)
		s.stopCleanly(t)
	})
}

// keysWeak are base64 master keys of 32 bytes that carry little entropy.
func keysWeak() map[string]string {
	pattern := []byte("0123456789abcdef0123456789abcdef")
	seq := make([]byte, 32)
	for i := range seq {
		seq[i] = byte(i)
	}
	return map[string]string{
		"all zero":       base64.StdEncoding.EncodeToString(make([]byte, 32)),
		"constant":       base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x41}, 32)),
		"repeating":      base64.StdEncoding.EncodeToString(pattern),
		"two bytes":      base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xde, 0xad}, 16)),
		"counting":       base64.StdEncoding.EncodeToString(seq),
		"a passphrase":   base64.StdEncoding.EncodeToString([]byte("correct horse battery staple!!!!")),
		"few byte kinds": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8}, 4)),
	}
}

// Weak master keys are refused wherever a master key is given: the
// environment, a key file, the previous key and rotate-master's new key.
func TestKeysWeakMasterKeysAreRefused(t *testing.T) {
	for name, weak := range keysWeak() {
		t.Run(name, func(t *testing.T) {
			c := newCLIEnv(t)
			c.vars[config.EnvMasterKey] = weak
			for _, args := range [][]string{{"serve", "--addr", "127.0.0.1:0"}, {"customer", "create", "--name", "Weak AB"}} {
				if err := keysRefused(t, c, args[0]+" with a weak key", args...); !errors.Is(err, seal.ErrWeakKey) {
					t.Errorf("%s with a weak key: err %v, want ErrWeakKey", args[0], err)
				}
			}
			if _, err := os.Stat(c.vars[config.EnvDatabase] + ".keys"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a key store was created for a weak key")
			}

			file := filepath.Join(t.TempDir(), "weak.key")
			if err := os.WriteFile(file, []byte(weak+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			f := newCLIEnv(t)
			delete(f.vars, config.EnvMasterKey)
			f.vars[config.EnvKeyFile] = file
			if err := keysRefused(t, f, "serve with a weak key file", "serve", "--addr", "127.0.0.1:0"); !errors.Is(err, seal.ErrWeakKey) {
				t.Errorf("serve with a weak key file: err %v, want ErrWeakKey", err)
			}

			p := newCLIEnv(t)
			p.customer("Strong AB")
			p.vars[config.EnvPreviousMasterKey] = weak
			if err := keysRefused(t, p, "serve with a weak previous key", "serve", "--addr", "127.0.0.1:0"); !errors.Is(err, seal.ErrWeakKey) {
				t.Errorf("serve with a weak previous key: err %v, want ErrWeakKey", err)
			}
			delete(p.vars, config.EnvPreviousMasterKey)
			before := keysStoreBytes(t, p)
			if err := keysRefused(t, p, "rotate-master to a weak key", "keys", "rotate-master", "--new-key-file", file); !errors.Is(err, seal.ErrWeakKey) {
				t.Errorf("rotate-master to a weak key: err %v, want ErrWeakKey", err)
			}
			p.vars["ACCOUNTS_NEW_MASTER_KEY"] = weak
			if err := keysRefused(t, p, "rotate-master to a weak key from env", "keys", "rotate-master"); !errors.Is(err, seal.ErrWeakKey) {
				t.Errorf("rotate-master to a weak key from env: err %v, want ErrWeakKey", err)
			}
			if !bytes.Equal(before, keysStoreBytes(t, p)) {
				t.Errorf("rotate-master to a weak key changed the key store")
			}
		})
	}
}

// keysStoreBytes is every wrapped key of c's key store, concatenated.
func keysStoreBytes(t *testing.T, c *cliEnv) []byte {
	t.Helper()
	ks, err := keystore.Open(context.Background(), keysLocation(t, c))
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	all, err := ks.All(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	for _, w := range all {
		b = append(b, w.Wrapped...)
	}
	return b
}

// A key file or a key store file that group or others may read is refused.
func TestKeysFilesReadableByOthersAreRefused(t *testing.T) {
	c := newCLIEnv(t)
	delete(c.vars, config.EnvMasterKey)
	c.customer("Private AB")
	db := c.vars[config.EnvDatabase]
	for _, file := range []string{db + ".key", db + ".keys"} {
		for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
			if err := os.Chmod(file, mode); err != nil {
				t.Fatal(err)
			}
			what := filepath.Base(file) + " mode " + mode.String()
			for _, args := range [][]string{{"serve", "--addr", "127.0.0.1:0"}, {"customer", "create", "--name", "Shared AB"}} {
				if err := keysRefused(t, c, args[0]+" with "+what, args...); !errors.Is(err, config.ErrNotPrivate) {
					t.Errorf("%s with %s: err %v, want ErrNotPrivate", args[0], what, err)
				}
			}
		}
		if err := os.Chmod(file, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// An explicit key file likewise.
	file := filepath.Join(t.TempDir(), "explicit.key")
	if err := os.WriteFile(file, []byte(seal.GenerateMasterKey()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := newCLIEnv(t)
	delete(e.vars, config.EnvMasterKey)
	e.vars[config.EnvKeyFile] = file
	if err := keysRefused(t, e, "serve with a world-readable --key-file", "serve", "--addr", "127.0.0.1:0"); !errors.Is(err, config.ErrNotPrivate) {
		t.Errorf("serve with a world-readable --key-file: err %v, want ErrNotPrivate", err)
	}
	c.customer("Private Again AB")
}

// Every database location that is not a postgres:// URL or a usable file
// path is refused at once, and nothing is created for it.
func TestDatabaseLocationIsCheckedFirst(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	aFile := filepath.Join(dir, "a-file")
	if err := os.WriteFile(aFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	aDir := filepath.Join(dir, "a-dir")
	if err := os.Mkdir(aDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, location := range map[string]string{
		"mysql URL":           "mysql://foo",
		"sqlite URL":          "sqlite:///tmp/x.db",
		"file URL":            "file:///tmp/x.db",
		"http URL":            "http://example.com/db",
		"upper-case scheme":   "POSTGRES://u@127.0.0.1:1/x",
		"a directory":         aDir,
		"a file as a folder":  filepath.Join(aFile, "accounts.db"),
		"keyword/value DSN":   "host=127.0.0.1 port=1 dbname=x",
		"in-memory database":  ":memory:",
		"an SQLite file: URI": "file:x.db",
	} {
		t.Run(name, func(t *testing.T) {
			c := newCLIEnv(t)
			c.vars[config.EnvDatabase] = location
			for _, args := range [][]string{
				{"migrate"},
				{"serve", "--addr", "127.0.0.1:0"},
				{"customer", "create", "--name", "Nowhere AB"},
				{"client", "list", "--customer", "00000000-0000-0000-0000-000000000000"},
			} {
				keysRefused(t, c, name+": "+args[0], args...)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 2 {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Errorf("the refused commands created %v in the working folder", names)
			}
		})
	}
	// A key store location is checked the same way.
	c := newCLIEnv(t)
	c.vars[config.EnvKeyStore] = "mysql://keys"
	keysRefused(t, c, "a mysql key store", "serve", "--addr", "127.0.0.1:0")
	if _, err := os.Stat(c.vars[config.EnvDatabase]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("serve created the database before refusing the key store")
	}
	c.vars[config.EnvKeyStore] = aDir
	keysRefused(t, c, "a directory as key store", "serve", "--addr", "127.0.0.1:0")
}

// The key store must be apart from the data: two spellings of one
// PostgreSQL database are one database.
func TestKeyStoreApartComparesWhatURLsName(t *testing.T) {
	for _, pair := range [][2]string{
		{"postgresql://u@localhost:1/x", "postgres://u@127.0.0.1:1/x"},
		{"postgres://u@[::1]:1/x", "postgres://other@localhost:1/x?sslmode=disable"},
		{"postgres://u@LOCALHOST:1/x", "postgresql://u:secret@127.0.0.2:1/x"},
		{"postgres://u@db.example:5432/x", "postgres://u@DB.example/x"},
	} {
		c := newCLIEnv(t)
		c.vars[config.EnvDatabase] = pair[0]
		c.vars[config.EnvKeyStore] = pair[1]
		keysRefused(t, c, pair[0]+" and "+pair[1], "serve", "--addr", "127.0.0.1:0")
	}
	// A file key store named by another spelling of the database's path.
	c := newCLIEnv(t)
	db := c.vars[config.EnvDatabase]
	c.vars[config.EnvKeyStore] = filepath.Join(filepath.Dir(db), ".", filepath.Base(db))
	keysRefused(t, c, "the database file by another path", "serve", "--addr", "127.0.0.1:0")
}

// serve on PostgreSQL without a key store is refused before any migration.
func TestServePostgresWithoutKeyStoreChangesNothing(t *testing.T) {
	database := storetest.PostgresURL(t)
	c := newCLIEnv(t)
	c.vars[config.EnvDatabase] = database
	keysRefused(t, c, "serve on PostgreSQL without a key store", "serve", "--addr", "127.0.0.1:0")
	keysRefused(t, c, "customer create on PostgreSQL without a key store", "customer", "create", "--name", "No Store AB")
	if n := cliPostgresTables(t, database); n != 0 {
		t.Errorf("the refused commands created %d tables", n)
	}
}

// On PostgreSQL with neither a master key nor a key store, every command
// that uses the master key names the missing key first (there is no key
// file to generate), and customer delete, which only opens the key store,
// names the key store: refused by the tree's checks before anything
// connects, so no server is needed.
func TestKeysPostgresWithoutKeyNamesWhatIsMissing(t *testing.T) {
	c := newCLIEnv(t)
	c.vars[config.EnvDatabase] = "postgres://u@127.0.0.1:1/nowhere"
	delete(c.vars, config.EnvMasterKey)
	id := "00000000-0000-4000-8000-000000000000"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"customer", "create", "--name", "Keyless AB"}, config.EnvMasterKey},
		{[]string{"keys", "rotate-master", "--new-key-file", keysNewKeyFile(t)}, config.EnvMasterKey},
		{[]string{"keys", "rotate-data"}, config.EnvMasterKey},
		{[]string{"keys", "verify"}, config.EnvMasterKey},
		{[]string{"customer", "delete", "--id", id, "--yes"}, config.EnvKeyStore},
	} {
		what := strings.Join(tc.args[:2], " ")
		err := keysRefused(t, c, what, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s on PostgreSQL without keys: err %v, want one naming %s", what, err, tc.want)
		}
	}
}

// migrate says which migrations it applied, then that none were pending.
func TestMigrateSaysWhatItApplied(t *testing.T) {
	files, err := filepath.Glob("../store/sqlite/migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations found (err %v)", err)
	}
	c := newCLIEnv(t)
	out, _, err := c.run("migrate")
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	for _, f := range files {
		if !strings.Contains(out, filepath.Base(f)) {
			t.Errorf("migrate's output does not name %s", filepath.Base(f))
		}
	}
	again, _, err := c.run("migrate")
	if err != nil {
		t.Fatalf("a second migrate: %v", err)
	}
	for _, f := range files {
		if strings.Contains(again, filepath.Base(f)) {
			t.Errorf("a second migrate says it applied %s again", filepath.Base(f))
		}
	}
	if strings.TrimSpace(again) == "" {
		t.Errorf("a second migrate says nothing")
	}
}

// cliPostgresTables counts the tables in the schema a test URL names.
func cliPostgresTables(t *testing.T, database string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, database)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// keysVerifyResult is `keys verify --json`'s report.
type keysVerifyResult struct {
	Customers []struct {
		CustomerID string  `json:"customer_id"`
		OK         bool    `json:"ok"`
		Problem    *string `json:"problem"`
		Failed     []struct {
			Purpose string `json:"purpose"`
			Version int    `json:"version"`
		} `json:"failed"`
	} `json:"customers"`
}

// keys verify opens every customer's keys and reports each; it exits 1
// when any fails, naming the key that does.
func TestKeysVerify(t *testing.T) {
	c := newCLIEnv(t)
	a := c.customer("Verify A AB")
	b := c.customer("Verify B AB")
	if out, _, err := c.run("keys", "verify", "--json"); err != nil {
		t.Fatalf("keys verify of intact keys: %v", err)
	} else {
		var res keysVerifyResult
		if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Customers) != 2 {
			t.Fatalf("keys verify --json: %d customers (err %v), want 2", len(res.Customers), err)
		}
		for _, r := range res.Customers {
			if !r.OK || len(r.Failed) != 0 {
				t.Errorf("customer %s: ok %v, failed %v; want ok", r.CustomerID, r.OK, r.Failed)
			}
		}
	}

	// B's data key, damaged behind the service's back.
	raw, err := sql.Open("sqlite", "file:"+keysLocation(t, c))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if r, err := raw.Exec("UPDATE customer_keys SET wrapped = ? WHERE customer_id = ? AND purpose = 'data'",
		bytes.Repeat([]byte{7}, 60), b.ID); err != nil {
		t.Fatal(err)
	} else if n, _ := r.RowsAffected(); n != 1 {
		t.Fatalf("damaged %d keys, want 1", n)
	}

	out, _, err := c.run("keys", "verify", "--json")
	var ue *UsageError
	if err == nil || errors.As(err, &ue) {
		t.Errorf("keys verify of a damaged key: err %v, want a failure (exit 1)", err)
	}
	var res keysVerifyResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("keys verify --json printed no report: %v", err)
	}
	seen := map[string]bool{}
	for _, r := range res.Customers {
		seen[r.CustomerID] = true
		switch r.CustomerID {
		case a.ID:
			if !r.OK || len(r.Failed) != 0 || r.Problem != nil {
				t.Errorf("the intact customer is reported failing")
			}
		case b.ID:
			if r.OK || len(r.Failed) != 1 || r.Failed[0].Purpose != "data" || r.Failed[0].Version != 1 {
				t.Errorf("the damaged customer: ok %v, failed %+v; want data version 1", r.OK, r.Failed)
			}
			if r.Problem == nil {
				t.Error("the damaged customer has no problem key (the README: when a customer's keys are not fine)")
			}
		}
	}
	if !seen[a.ID] || !seen[b.ID] {
		t.Errorf("keys verify reported %d customers, not both", len(res.Customers))
	}
	if _, _, err := c.run("keys", "verify", "--customer", a.ID); err != nil {
		t.Errorf("keys verify --customer of the intact customer: %v", err)
	}
	if _, _, err := c.run("keys", "verify", "--customer", b.ID); err == nil || errors.As(err, &ue) {
		t.Errorf("keys verify --customer of the damaged customer: err %v, want a failure", err)
	}
	_, _, err = c.run("keys", "verify", "--customer", "not-a-uuid")
	cliUsage(t, "keys verify --customer not-a-uuid", err)
}

// keysNewKeyFile writes a new master key to a private file.
func keysNewKeyFile(t *testing.T) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "new.key")
	if err := os.WriteFile(file, []byte(seal.GenerateMasterKey()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// keysDropCheck makes c's key store one written before check values.
func keysDropCheck(t *testing.T, c *cliEnv) {
	t.Helper()
	raw, err := sql.Open("sqlite", "file:"+keysLocation(t, c))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec("DROP TABLE master_key_check"); err != nil {
		t.Fatal(err)
	}
}

// keysHasCheck reports whether c's key store has a check table.
func keysHasCheck(t *testing.T, c *cliEnv) bool {
	t.Helper()
	raw, err := sql.Open("sqlite", "file:"+keysLocation(t, c)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var n int
	if err := raw.QueryRow("SELECT count(*) FROM sqlite_master WHERE name = 'master_key_check'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// A key store written before check values (an existing deployment) gets
// one at the first start whose key opens every key in it; a wrong key is
// refused with nothing written. One whose keys are wrapped under two master
// keys (customers created under a wrong key by an older version) is
// refused until rotate-master, given both, rewraps them under one.
func TestKeysAdoptKeyStoreWithoutCheckValue(t *testing.T) {
	c := newCLIEnv(t)
	a := c.customer("Adopted A AB")
	right := c.vars[config.EnvMasterKey]
	keysDropCheck(t, c)

	c.vars[config.EnvMasterKey] = seal.GenerateMasterKey()
	if err := keysRefused(t, c, "serve with a wrong key", "serve", "--addr", "127.0.0.1:0"); !errors.Is(err, masterkey.ErrWrongKey) {
		t.Errorf("a wrong key on a key store without check value: err %v, want ErrWrongKey", err)
	}
	if keysHasCheck(t, c) {
		t.Fatal("the refused start wrote to the key store")
	}
	c.vars[config.EnvMasterKey] = right
	s := c.serve("--addr", "127.0.0.1:0")
	s.stopCleanly(t)
	if !keysHasCheck(t, c) {
		t.Fatal("the first start with the right key wrote no check value")
	}

	// A customer wrapped under another key, as an older version allowed.
	keysDropCheck(t, c)
	other := seal.GenerateMasterKey()
	otherKey, _ := seal.ParseMasterKey(other)
	ks, err := keystore.Open(context.Background(), keysLocation(t, c))
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.Put(context.Background(), nil, otherKey.NewCustomerKeys("3f0c5c1e-5d0b-4a53-9d38-6c7d5b8a2e11")); err != nil {
		t.Fatal(err)
	}
	ks.Close()
	keysDropCheck(t, c)
	if err := keysRefused(t, c, "serve on mixed keys", "serve", "--addr", "127.0.0.1:0"); !errors.Is(err, masterkey.ErrMixedKeys) {
		t.Errorf("keys under two master keys: err %v, want ErrMixedKeys", err)
	}
	if _, _, err := c.run("keys", "verify"); err == nil {
		t.Error("keys verify passes keys under two master keys")
	}
	c.vars[config.EnvPreviousMasterKey] = other
	newFile := keysNewKeyFile(t)
	if _, _, err := c.run("keys", "rotate-master", "--new-key-file", newFile); err != nil {
		t.Fatalf("rotate-master with both keys: %v", err)
	}
	raw, _ := os.ReadFile(newFile)
	c.vars[config.EnvMasterKey] = string(raw)
	delete(c.vars, config.EnvPreviousMasterKey)
	if _, _, err := c.run("keys", "verify"); err != nil {
		t.Errorf("keys verify after rotate-master: %v", err)
	}
	var cl cliClient
	c.runJSON(&cl, "client", "create", "--customer", a.ID, "--json")
	s = c.serve("--addr", "127.0.0.1:0")
	keysCreateAddress(t, "http://"+s.addr, cl, http.StatusCreated)
	s.stopCleanly(t)
}

// cliPostgresDatabase creates a database of its own on the test server
// (a key store must not be the data's database), dropped when the test
// ends, and returns its URL. It skips when PostgreSQL is not configured.
func cliPostgresDatabase(t *testing.T) string {
	t.Helper()
	base := os.Getenv(storetest.PostgresEnv)
	if base == "" {
		t.Skip("PostgreSQL tests are off: set " + storetest.PostgresEnv)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s does not parse", storetest.PostgresEnv)
	}
	var random [6]byte
	rand.Read(random[:])
	name := "keys_" + hex.EncodeToString(random[:])
	admin := func(q string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	admin("CREATE DATABASE " + name)
	t.Cleanup(func() { admin("DROP DATABASE " + name + " WITH (FORCE)") })
	u.Path = "/" + name
	return u.String()
}

// The whole PostgreSQL deployment: data and key store in two databases of
// one server. A wrong key is refused; a server left with the old key after
// a rotation turns unready while one holding both keys serves on.
func TestKeysOnPostgresKeyStore(t *testing.T) {
	c := newCLIEnv(t)
	c.vars[config.EnvDatabase] = storetest.PostgresURL(t)
	c.vars[config.EnvKeyStore] = cliPostgresDatabase(t)
	cu := c.customer("Postgres Keys AB")
	var cl cliClient
	c.runJSON(&cl, "client", "create", "--customer", cu.ID, "--json")
	old := c.vars[config.EnvMasterKey]

	wrong := *c
	wrong.vars = maps.Clone(c.vars)
	wrong.vars[config.EnvMasterKey] = seal.GenerateMasterKey()
	if err := keysRefused(t, &wrong, "serve with a wrong key", "serve", "--addr", "127.0.0.1:0"); !errors.Is(err, masterkey.ErrWrongKey) {
		t.Errorf("a wrong key against a PostgreSQL key store: err %v, want ErrWrongKey", err)
	}

	newKey := seal.GenerateMasterKey()
	rolling := *c
	rolling.vars = maps.Clone(c.vars)
	rolling.vars[config.EnvMasterKey], rolling.vars[config.EnvPreviousMasterKey] = newKey, old
	stale := c.serve("--addr", "127.0.0.1:0")
	both := rolling.serve("--addr", "127.0.0.1:0")
	for _, s := range []*servedCLI{stale, both} {
		if got := cliStatus("http://"+s.addr, "/readyz"); got != http.StatusOK {
			t.Fatalf("/readyz before the rotation: %d", got)
		}
	}
	c.vars["ACCOUNTS_NEW_MASTER_KEY"] = newKey
	if _, _, err := c.run("keys", "rotate-master"); err != nil {
		t.Fatalf("rotate-master: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for cliStatus("http://"+stale.addr, "/readyz") != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("a server with the old key only stayed ready after the rotation")
		}
		time.Sleep(100 * time.Millisecond)
	}
	keysCreateAddress(t, "http://"+both.addr, cl, http.StatusCreated)
	if got := cliStatus("http://"+both.addr, "/readyz"); got != http.StatusOK {
		t.Errorf("/readyz of the server with both keys: %d", got)
	}
	stale.stop()
	both.stopCleanly(t)
	c.vars[config.EnvMasterKey] = newKey
	if _, _, err := c.run("keys", "verify"); err != nil {
		t.Errorf("keys verify with the new key: %v", err)
	}
}

// The command's refusals: exit code 2, one line on stderr that holds no key;
// keys verify that finds a key that does not open: exit code 1.
func TestKeysExitCodes(t *testing.T) {
	bin := cliBuild(t)
	c := newCLIEnv(t)
	c.customer("Exit Keys AB")
	wrong := seal.GenerateMasterKey()
	weak := base64.StdEncoding.EncodeToString(make([]byte, 32))
	cases := []struct {
		name string
		vars map[string]string
		args []string
		want int
	}{
		{"wrong key", map[string]string{config.EnvMasterKey: wrong}, []string{"serve", "--addr", "127.0.0.1:0"}, 2},
		{"weak key", map[string]string{config.EnvMasterKey: weak}, []string{"customer", "create", "--name", "X"}, 2},
		{"mysql URL", map[string]string{config.EnvDatabase: "mysql://u:Zq9-pw-7Kx@h/x"}, []string{"migrate"}, 2},
		{"verify with a wrong key", map[string]string{config.EnvMasterKey: wrong}, []string{"keys", "verify"}, 1},
		{"verify", nil, []string{"keys", "verify"}, 0},
	}
	for _, tc := range cases {
		cmd := exec.Command(bin, tc.args...)
		cmd.Env = cliCleanEnv()
		for k, v := range c.vars {
			if o, ok := tc.vars[k]; ok {
				v = o
			}
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		for k, v := range tc.vars {
			if _, ok := c.vars[k]; !ok {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		var err error
		select {
		case err = <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("%s: the command did not exit", tc.name)
		}
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		if code != tc.want {
			t.Errorf("%s: exit code %d, want %d", tc.name, code, tc.want)
		}
		line := strings.TrimSuffix(stderr.String(), "\n")
		if tc.want == 2 && (line == "" || strings.Contains(line, "\n")) {
			t.Errorf("%s: stderr is not one line (%d bytes)", tc.name, stderr.Len())
		}
		for _, secret := range []string{wrong, weak, c.vars[config.EnvMasterKey], "Zq9-pw-7Kx"} {
			if strings.Contains(stderr.String(), secret) {
				t.Errorf("%s: stderr holds key material or a password", tc.name)
			}
		}
	}
}

// rotate-master refuses a new key that is the key in use, from the
// environment, from the key file in use named as the new one, or from a
// copy of it, before changing anything: its closing line would otherwise
// say to delete the file of the only key. An interrupted rotation, whose
// key file holds the new key and the old, still finishes.
func TestKeysRotateMasterRefusesTheKeyInUse(t *testing.T) {
	c := newCLIEnv(t)
	c.customer("Same Key AB")
	current := c.vars[config.EnvMasterKey]

	c.vars[config.EnvNewMasterKey] = current
	keysRefused(t, c, "the new key from the environment is the current one", "keys", "rotate-master")
	delete(c.vars, config.EnvNewMasterKey)

	// The same key in the key file in use, and in a copy of it.
	keyFile := filepath.Join(t.TempDir(), "accounts.key")
	if err := os.WriteFile(keyFile, []byte(current+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(t.TempDir(), "copy.key")
	if err := os.WriteFile(copied, []byte(current+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	delete(c.vars, config.EnvMasterKey)
	c.vars[config.EnvKeyFile] = keyFile
	keysRefused(t, c, "the key file in use as the new key", "keys", "rotate-master", "--new-key-file", keyFile)
	keysRefused(t, c, "a copy of the key in use as the new key", "keys", "rotate-master", "--new-key-file", copied)
	if raw, err := os.ReadFile(keyFile); err != nil || string(raw) != current+"\n" {
		t.Fatalf("a refused rotation changed the key file (err %v)", err)
	}
	if _, _, err := c.run("keys", "verify"); err != nil {
		t.Fatalf("keys verify after the refusals: %v", err)
	}

	// An interrupted rotation: the file holds the new key, then the old.
	newFile := keysNewKeyFile(t)
	newKey, err := os.ReadFile(newFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, []byte(strings.TrimSpace(string(newKey))+"\n"+current+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.run("keys", "rotate-master", "--new-key-file", newFile); err != nil {
		t.Fatalf("finishing an interrupted rotation: %v", err)
	}
	if raw, err := os.ReadFile(keyFile); err != nil || strings.TrimSpace(string(raw)) != strings.TrimSpace(string(newKey)) {
		t.Errorf("after the rotation the key file does not hold the new key alone (err %v)", err)
	}
}

// A command that works on what the deployment holds refuses a database
// that is not there (a mistyped --database, an unset ACCOUNTS_DATABASE)
// instead of making a new one and finding nothing in it; serve refuses a
// key store holding keys without its database (a restore that forgot the
// data file). Neither creates a file.
func TestCommandsRefuseAMissingDatabase(t *testing.T) {
	c := newCLIEnv(t)
	cu := c.customer("Missing Data AB")
	db := c.vars[config.EnvDatabase]
	typo := filepath.Join(t.TempDir(), "typo", "accounts.db")
	c.vars[config.EnvDatabase] = typo
	for _, args := range [][]string{
		{"audit", "verify"},
		{"audit", "list", "--customer", cu.ID},
		{"client", "list", "--customer", cu.ID},
		{"client", "create", "--customer", cu.ID},
		{"keys", "verify"},
		{"keys", "rotate-data"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := Run(ctx, args, IO{Env: c.env, Stdout: io.Discard, Stderr: io.Discard})
		cancel()
		cliUsage(t, strings.Join(args, " ")+" on a missing database", err)
		if _, err := os.Stat(filepath.Dir(typo)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s on a missing database created its folder", strings.Join(args, " "))
		}
	}

	// The deployment's key store and key, without its database file.
	c.vars[config.EnvDatabase] = db
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Rename(db+suffix, db+suffix+".away"); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	keysRefused(t, c, "serve with keys and no database", "serve", "--addr", "127.0.0.1:0")
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Error("serve with keys and no database created a database")
	}
}

// A key store holding a check value and no customer's keys, beside no
// database, is a new deployment whose first process has not made its
// database yet (it writes the check value first and a customer's keys only
// once the database is there): a second command started then goes on.
// Four customer creates started together on a new SQLite deployment were
// refused in one round of eight, two of them "keys without a database"
// (found by a review). A customer's keys still make it a refusal
// (TestCommandsRefuseAMissingDatabase).
func TestNewDeploymentKeysWithoutADatabaseYet(t *testing.T) {
	c := newCLIEnv(t)
	cu := c.customer("Shredded AB")
	ks, err := keystore.Open(context.Background(), keysLocation(t, c))
	if err != nil {
		t.Fatal(err)
	}
	err = ks.Destroy(context.Background(), cu.ID)
	ks.Close()
	if err != nil {
		t.Fatal(err)
	}
	if n := keysStored(t, keysLocation(t, c)); n != 0 {
		t.Fatalf("the key store holds %d keys, want none", n)
	}
	db := c.vars[config.EnvDatabase]
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(db + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	c.customer("Second Process AB")
	if _, err := os.Stat(db); err != nil {
		t.Errorf("customer create beside a key store without customers' keys made no database: %v", err)
	}
}

// customer create refuses a name holding control characters, which would
// garble lists and customer delete's prompt on a terminal, and one it
// would otherwise have to repair: bytes that are not UTF-8, white space
// around it.
func TestCustomerNameRefusesControlCharacters(t *testing.T) {
	c := newCLIEnv(t)
	for _, name := range []string{"Line\nBreak AB", "Escape \x1b[31m AB", "Nul\x00 AB",
		"Bytes \xff\xfe AB", "Overlong \xc0\xaf AB", "Cut \xc3", " Padded AB", "Padded AB ", "Tabbed AB\t"} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := Run(ctx, []string{"customer", "create", "--name", name}, IO{Env: c.env, Stdout: io.Discard, Stderr: io.Discard})
		cancel()
		cliUsage(t, "a customer name with a control character", err)
	}
	c.customer("Tab\tSeparated AB")
}

// customer delete while the customer's client keeps writing, through two
// serve processes: the command succeeds at its first run (on PostgreSQL
// the rows' deletion deadlocked with the writes), and no write of the
// customer fails or is acknowledged once the command has returned; every
// answer is a 201 or, from the revocation on, a 401 (or the 429 of too many
// failed authentications). Another customer is
// served throughout. On SQLite, and on PostgreSQL when it is configured.
func TestCustomerDeleteUnderTraffic(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			c := newCLIEnv(t)
			if engine == "postgres" {
				c.vars[config.EnvDatabase] = storetest.PostgresURL(t)
				c.vars[config.EnvKeyStore] = cliPostgresDatabase(t)
			}
			gone, kept := c.customer("Leaving AB"), c.customer("Staying AB")
			var goneClient, keptClient cliClient
			c.runJSON(&goneClient, "client", "create", "--customer", gone.ID, "--json")
			c.runJSON(&keptClient, "client", "create", "--customer", kept.ID, "--json")
			// The client writes far more than its default rate allows.
			servers := []*servedCLI{c.serve("--addr", "127.0.0.1:0", "--client-rate", "0"), c.serve("--addr", "127.0.0.1:0", "--client-rate", "0")}

			type answer struct {
				status     int
				start, end time.Time
			}
			var mu sync.Mutex
			var answers []answer
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for w := range 6 {
				wg.Go(func() {
					base := "http://" + servers[w%len(servers)].addr
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						start := time.Now()
						status, _ := cliDo(base, goneClient, "POST", "/accounts/users/customer/tenant/",
							fmt.Sprintf(`{"first_name": "Leaving", "custom_id": "w%d-%d"}`, w, i))
						mu.Lock()
						answers = append(answers, answer{status, start, time.Now()})
						mu.Unlock()
					}
				})
			}
			time.Sleep(500 * time.Millisecond)
			out, _, err := c.run("customer", "delete", "--id", gone.ID, "--yes")
			returned := time.Now()
			time.Sleep(300 * time.Millisecond)
			close(stop)
			wg.Wait()
			if err != nil {
				t.Fatalf("customer delete under traffic: %v (%s)", err, out)
			}
			created, late := 0, 0
			statuses := map[int]int{}
			for _, a := range answers {
				statuses[a.status]++
				if a.status == http.StatusCreated {
					created++
					if a.start.After(returned) {
						late++
					}
				}
			}
			if created == 0 {
				t.Fatalf("no write succeeded before the deletion: the test proves nothing (statuses %v)", statuses)
			}
			// After the revocation: 401, then 429 once the client's failed
			// authentications reach their limit.
			refused := statuses[http.StatusUnauthorized] + statuses[http.StatusTooManyRequests]
			if late > 0 || statuses[http.StatusCreated]+refused != len(answers) || statuses[http.StatusUnauthorized] == 0 {
				t.Errorf("answers to the deleted customer's writes: %v, %d of the 201s after the command returned; want 201s, then 401 (and 429), none after", statuses, late)
			}
			for _, s := range servers {
				if status, _ := cliDo("http://"+s.addr, keptClient, "POST", "/sales/organization/", `{"name": "Still here"}`); status != http.StatusCreated && status != http.StatusBadRequest {
					t.Errorf("the other customer after the deletion: status %d", status)
				}
				s.stopCleanly(t)
			}
		})
	}
}

// A PostgreSQL URL that names what the server refuses — a database that
// does not exist, a user it refuses, a setting it does not know — or that
// does not parse is a refusal to start (exit 2: it does not pass by
// itself); a server that does not answer is a failure (exit 1: it may in a
// moment).
func TestDatabaseURLRefusals(t *testing.T) {
	base, err := url.Parse(storetest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	variant := func(edit func(u *url.URL)) string {
		u := *base
		u.RawQuery = ""
		edit(&u)
		return u.String()
	}
	for _, tc := range []struct {
		name, url string
		refused   bool
	}{
		{"no such database", variant(func(u *url.URL) { u.Path = "/no_such_database_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "") }), true},
		{"no such user", variant(func(u *url.URL) { u.User = url.User("no_such_user_accounts") }), true},
		{"unknown setting", variant(func(u *url.URL) { u.RawQuery = "no_such_setting_accounts=1" }), true},
		{"port out of range", variant(func(u *url.URL) { u.Host = "127.0.0.1:99999" }), true},
		{"commits acknowledged before they are durable", variant(func(u *url.URL) { u.RawQuery = "synchronous_commit=off" }), true},
		{"nothing listening", variant(func(u *url.URL) { u.Host = "127.0.0.1:1" }), false},
	} {
		c := newCLIEnv(t)
		c.vars[config.EnvDatabase] = tc.url
		c.vars[config.EnvKeyStore] = filepath.Join(t.TempDir(), "keys.db")
		_, _, err := c.run("migrate")
		var ue *UsageError
		if got := errors.As(err, &ue); err == nil || got != tc.refused {
			t.Errorf("%s: err %v; want refused (exit 2) %v", tc.name, err, tc.refused)
		}
	}
}

// The same for a PostgreSQL key store, beside a data database that is
// fine: a database the server does not have, or one that acknowledges
// commits before they are durable (a customer key lost in a crash leaves
// its data unreadable), is a refusal to start, before anything is made.
func TestKeyStoreURLRefusals(t *testing.T) {
	// Each case on a database of its own, so that none sees another's keys.
	variant := func(edit func(u *url.URL)) string {
		u, err := url.Parse(cliPostgresDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		edit(u)
		return u.String()
	}
	for _, tc := range []struct {
		name, url string
		refused   bool
	}{
		{"no such database", variant(func(u *url.URL) { u.Path = "/no_such_database_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "") }), true},
		{"commits acknowledged before they are durable", variant(func(u *url.URL) { u.RawQuery = "synchronous_commit=off" }), true},
		{"a database of its own", variant(func(*url.URL) {}), false},
	} {
		c := newCLIEnv(t)
		c.vars[config.EnvDatabase] = storetest.PostgresURL(t)
		c.vars[config.EnvKeyStore] = tc.url
		_, _, err := c.run("customer", "create", "--name", "Key Store URL AB")
		var ue *UsageError
		if got := errors.As(err, &ue); got != tc.refused || (err != nil) != tc.refused {
			t.Errorf("%s: err %v; want refused (exit 2) %v", tc.name, err, tc.refused)
		}
	}
}

// A master key given twice — the variable and a key file, or rotate-master's
// new key in the variable and a file — is refused by every command that
// takes it, and nothing changes: which one was meant is anyone's guess.
func TestKeysGivenTwiceAreRefused(t *testing.T) {
	c := newCLIEnv(t)
	c.customer("Twice AB")
	keys := keysStored(t, keysLocation(t, c))
	file := keysNewKeyFile(t)
	for _, args := range [][]string{
		{"serve", "--addr", "127.0.0.1:0", "--key-file", file},
		{"customer", "create", "--name", "Twice Again AB", "--key-file", file},
		{"keys", "verify", "--key-file", file},
	} {
		keysRefused(t, c, args[0]+" with the key in the variable and a --key-file", args...)
	}
	c.vars[config.EnvNewMasterKey] = seal.GenerateMasterKey()
	keysRefused(t, c, "rotate-master with the new key in the variable and a file",
		"keys", "rotate-master", "--new-key-file", keysNewKeyFile(t))
	if n := keysStored(t, keysLocation(t, c)); n != keys {
		t.Errorf("the key store holds %d keys after the refusals, want %d", n, keys)
	}
}

// A previous master key without a current one, on a deployment whose key
// file would be generated, is refused before anything is made: whether the
// previous key parses or not, a new key beside it is never what a rotation
// meant.
func TestPreviousKeyWithoutCurrentKeyRefused(t *testing.T) {
	for name, previous := range map[string]string{"malformed": "zzz", "well-formed": seal.GenerateMasterKey()} {
		t.Run(name, func(t *testing.T) {
			c := newCLIEnv(t)
			delete(c.vars, config.EnvMasterKey)
			c.vars[config.EnvPreviousMasterKey] = previous
			for _, args := range [][]string{{"serve", "--addr", "127.0.0.1:0"}, {"customer", "create", "Previous AB"}} {
				keysRefused(t, c, args[0]+" with only a previous key", args...)
				if entries, err := os.ReadDir(filepath.Dir(c.vars[config.EnvDatabase])); err != nil || len(entries) != 0 {
					t.Errorf("%s with only a previous key left %d files (error %v), want none", args[0], len(entries), err)
				}
			}
		})
	}
}
