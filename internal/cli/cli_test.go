package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"accounts/internal/auth"
	"accounts/internal/config"
	"accounts/internal/seal"

	"github.com/google/uuid"
)

// cliEnv is a command's environment: a fresh database and a master key.
type cliEnv struct {
	t    *testing.T
	vars map[string]string
}

func newCLIEnv(t *testing.T) *cliEnv {
	t.Helper()
	return &cliEnv{t: t, vars: map[string]string{
		config.EnvDatabase:  filepath.Join(t.TempDir(), "accounts.db"),
		config.EnvMasterKey: seal.GenerateMasterKey(),
		// No server runs beside the tests' rotations.
		config.EnvKeySettle: "0s",
	}}
}

func (c *cliEnv) env(k string) (string, bool) { v, ok := c.vars[k]; return v, ok }

// environ lists the variables as os.Environ does.
func (c *cliEnv) environ() []string {
	var out []string
	for k, v := range c.vars {
		out = append(out, k+"="+v)
	}
	return out
}

// run runs one command and returns its stdout, stderr and error.
func (c *cliEnv) run(args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	err := Run(context.Background(), args, IO{Env: c.env, Stdout: &out, Stderr: &errOut})
	return out.String(), errOut.String(), err
}

// runJSON runs a command that must succeed and decodes its JSON output,
// also into a map so the test can check the exact key set.
func (c *cliEnv) runJSON(v any, args ...string) map[string]json.RawMessage {
	c.t.Helper()
	out, _, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("accounts %s: %v", strings.Join(args, " "), err)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("accounts %s printed no JSON: %v", strings.Join(args, " "), err)
	}
	var m map[string]json.RawMessage
	json.Unmarshal([]byte(out), &m)
	return m
}

func cliSameKeys(t *testing.T, what string, m map[string]json.RawMessage, want ...string) {
	t.Helper()
	got := map[string]bool{}
	for k := range m {
		got[k] = true
	}
	for _, k := range want {
		if !got[k] {
			t.Errorf("%s: lacks key %q", what, k)
		}
		delete(got, k)
	}
	for k := range got {
		t.Errorf("%s: unexpected key %q", what, k)
	}
}

type cliCustomer struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	CreatedAt string `json:"created_at"`
}

type cliClient struct {
	ID         string            `json:"id"`
	CustomerID string            `json:"customer_id"`
	Scope      string            `json:"scope"`
	CreatedAt  string            `json:"created_at"`
	RevokedAt  *string           `json:"revoked_at"`
	Headers    map[string]string `json:"headers"`
}

var cliHeaderNames = []string{
	auth.HeaderCustomerID, auth.HeaderApplicationID, auth.HeaderServiceID, auth.HeaderServiceVersionID,
	auth.HeaderClientCT, auth.HeaderClientEntity, auth.HeaderClientSecret,
}

func cliIsUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}

func (c *cliEnv) customer(name string) cliCustomer {
	c.t.Helper()
	var cu cliCustomer
	m := c.runJSON(&cu, "customer", "create", "--name", name, "--json")
	cliSameKeys(c.t, "customer create --json", m, "id", "name", "created_at")
	return cu
}

func TestCLICustomerCreateJSON(t *testing.T) {
	c := newCLIEnv(t)
	cu := c.customer("Bostads AB Test")
	if !cliIsUUID(cu.ID) {
		t.Errorf("customer id is not a UUID")
	}
	if cu.Name != "Bostads AB Test" {
		t.Errorf("name %q, want the given name", cu.Name)
	}
	ts, err := time.Parse(time.RFC3339Nano, cu.CreatedAt)
	if err != nil || !strings.HasSuffix(cu.CreatedAt, "Z") {
		t.Errorf("created_at %q is not RFC 3339 UTC", cu.CreatedAt)
	} else if d := time.Since(ts); d < -time.Minute || d > time.Minute {
		t.Errorf("created_at %q is not now", cu.CreatedAt)
	}
	if other := c.customer("Bostads AB Test 2"); other.ID == cu.ID {
		t.Errorf("two customers got the same id")
	}
	// Without --json the command still succeeds and names the customer.
	out, _, err := c.run("customer", "create", "--name", "Plain Output AB")
	if err != nil || !strings.Contains(out, "Plain Output AB") {
		t.Errorf("customer create without --json: err %v, output lacks the name", err)
	}
}

func TestCLIClientCreate(t *testing.T) {
	c := newCLIEnv(t)
	cu := c.customer("Client Test AB")

	var rw cliClient
	m := c.runJSON(&rw, "client", "create", "--customer", cu.ID, "--json")
	cliSameKeys(t, "client create --json", m, "id", "customer_id", "scope", "headers")
	if !cliIsUUID(rw.ID) || rw.CustomerID != cu.ID {
		t.Errorf("client id %q / customer_id %q: want a UUID and the customer", rw.ID, rw.CustomerID)
	}
	if rw.Scope != "read_write" {
		t.Errorf("default scope %q, want read_write", rw.Scope)
	}
	var hm map[string]json.RawMessage
	json.Unmarshal(m["headers"], &hm)
	cliSameKeys(t, "client create headers", hm, cliHeaderNames...)
	for _, h := range cliHeaderNames {
		if rw.Headers[h] == "" {
			t.Errorf("header %s is empty", h)
		}
	}
	if rw.Headers[auth.HeaderCustomerID] != cu.ID || rw.Headers[auth.HeaderClientEntity] != rw.ID {
		t.Errorf("customer or client entity header does not name the customer / client")
	}
	if len(rw.Headers[auth.HeaderClientSecret]) < 20 {
		t.Errorf("secret has only %d characters", len(rw.Headers[auth.HeaderClientSecret]))
	}

	var rd cliClient
	c.runJSON(&rd, "client", "create", "--customer", cu.ID, "--scope", "read", "--json")
	if rd.Scope != "read" {
		t.Errorf("--scope read: scope %q", rd.Scope)
	}
	if rd.ID == rw.ID || rd.Headers[auth.HeaderClientSecret] == rw.Headers[auth.HeaderClientSecret] {
		t.Errorf("two clients share an id or a secret")
	}
	var rw2 cliClient
	c.runJSON(&rw2, "client", "create", "--customer", cu.ID, "--scope", "read_write", "--json")
	if rw2.Scope != "read_write" {
		t.Errorf("--scope read_write: scope %q", rw2.Scope)
	}

	for _, scope := range []string{"admin", "", "READ", "write"} {
		_, _, err := c.run("client", "create", "--customer", cu.ID, "--scope", scope, "--json")
		cliUsage(t, "--scope "+scope, err)
	}
}

// cliUsage asserts a *UsageError with a one-line message.
func cliUsage(t *testing.T, what string, err error) {
	t.Helper()
	var ue *UsageError
	if !errors.As(err, &ue) {
		t.Errorf("%s: error %v (%T), want *UsageError", what, err, err)
		return
	}
	if msg := err.Error(); msg == "" || strings.ContainsAny(msg, "\r\n") {
		t.Errorf("%s: usage message is not one non-empty line: %q", what, msg)
	}
}

func TestCLIClientListAndRevoke(t *testing.T) {
	c := newCLIEnv(t)
	cu := c.customer("List Test AB")
	other := c.customer("Other List AB")
	var issued []cliClient
	var secrets []string
	for _, scope := range []string{"read", "read_write", "read"} {
		var cl cliClient
		c.runJSON(&cl, "client", "create", "--customer", cu.ID, "--scope", scope, "--json")
		issued = append(issued, cl)
		secrets = append(secrets, cl.Headers[auth.HeaderClientSecret])
	}
	var otherClient cliClient
	c.runJSON(&otherClient, "client", "create", "--customer", other.ID, "--json")
	secrets = append(secrets, otherClient.Headers[auth.HeaderClientSecret])

	list := func() ([]cliClient, string) {
		t.Helper()
		out, _, err := c.run("client", "list", "--customer", cu.ID, "--json")
		if err != nil {
			t.Fatalf("client list: %v", err)
		}
		var cls []cliClient
		if err := json.Unmarshal([]byte(out), &cls); err != nil {
			t.Fatalf("client list printed no JSON array: %v", err)
		}
		return cls, out
	}
	cls, out := list()
	if len(cls) != len(issued) {
		t.Fatalf("client list: %d clients, want %d", len(cls), len(issued))
	}
	byID := map[string]cliClient{}
	for _, cl := range cls {
		byID[cl.ID] = cl
		if cl.CustomerID != cu.ID {
			t.Errorf("client list shows a client of another customer")
		}
		if cl.RevokedAt != nil {
			t.Errorf("client %s revoked before any revoke", cl.ID)
		}
		if cl.Headers[auth.HeaderClientSecret] != "" {
			t.Errorf("client list shows a secret header")
		}
	}
	for _, cl := range issued {
		if got, ok := byID[cl.ID]; !ok || got.Scope != cl.Scope {
			t.Errorf("client list lacks client %s or shows another scope", cl.ID)
		}
	}
	for i, s := range secrets {
		if s == "" || strings.Contains(out, s) {
			t.Errorf("client list output contains issued secret #%d (or it is empty)", i)
		}
	}
	plain, _, err := c.run("client", "list", "--customer", cu.ID)
	if err != nil {
		t.Fatalf("client list (text): %v", err)
	}
	for i, s := range secrets {
		if strings.Contains(plain, s) {
			t.Errorf("client list text output contains issued secret #%d", i)
		}
	}

	if _, _, err := c.run("client", "revoke", "--id", issued[1].ID); err != nil {
		t.Fatalf("client revoke: %v", err)
	}
	cls, out = list()
	for _, cl := range cls {
		if (cl.ID == issued[1].ID) != (cl.RevokedAt != nil) {
			t.Errorf("client %s: revoked_at %v after revoking client %s", cl.ID, cl.RevokedAt, issued[1].ID)
		}
		if cl.RevokedAt != nil {
			if _, err := time.Parse(time.RFC3339Nano, *cl.RevokedAt); err != nil {
				t.Errorf("revoked_at %q is not RFC 3339", *cl.RevokedAt)
			}
		}
	}
	for i, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("client list output after revoke contains issued secret #%d", i)
		}
	}
	// Revoking again succeeds and keeps the first revocation's time.
	var first, again map[string]string
	for _, into := range []*map[string]string{&first, &again} {
		out, _, err := c.run("client", "revoke", "--id", issued[2].ID, "--json")
		if err != nil || json.Unmarshal([]byte(out), into) != nil {
			t.Fatalf("client revoke --json: %v", err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if first["revoked_at"] == "" || again["revoked_at"] != first["revoked_at"] {
		t.Errorf("revoking twice: revoked_at %q, then %q", first["revoked_at"], again["revoked_at"])
	}
	var oc []cliClient
	outOther, _, err := c.run("client", "list", "--customer", other.ID, "--json")
	if err != nil || json.Unmarshal([]byte(outOther), &oc) != nil || len(oc) != 1 || oc[0].RevokedAt != nil {
		t.Errorf("other customer's clients changed by the revoke (err %v)", err)
	}

	// Unknown or malformed ids are usage errors.
	_, _, err = c.run("client", "revoke", "--id", uuid.NewString())
	cliUsage(t, "revoke unknown id", err)
	_, _, err = c.run("client", "revoke", "--id", "nope")
	cliUsage(t, "revoke malformed id", err)
	_, _, err = c.run("client", "revoke")
	cliUsage(t, "revoke without --id", err)
}

func TestCLIUsageErrors(t *testing.T) {
	c := newCLIEnv(t)
	cu := c.customer("Usage AB")
	cases := []struct {
		name string
		args []string
	}{
		{"no command", nil},
		{"unknown command", []string{"frobnicate"}},
		{"unknown customer subcommand", []string{"customer", "frobnicate"}},
		{"customer delete without --id", []string{"customer", "delete"}},
		{"unknown client subcommand", []string{"client", "frobnicate"}},
		{"customer without subcommand", []string{"customer"}},
		{"client without subcommand", []string{"client"}},
		{"missing --name", []string{"customer", "create"}},
		{"blank --name", []string{"customer", "create", "--name", "   "}},
		{"too long --name", []string{"customer", "create", "--name", strings.Repeat("n", 256)}},
		{"unknown flag", []string{"customer", "create", "--name", "X", "--bogus"}},
		{"unknown flag on client", []string{"client", "create", "--customer", cu.ID, "--secret", "s"}},
		{"stray argument", []string{"customer", "create", "--name", "X", "extra"}},
		{"stray argument on list", []string{"client", "list", "--customer", cu.ID, "extra"}},
		{"missing --customer", []string{"client", "create"}},
		{"non-UUID --customer", []string{"client", "create", "--customer", "not-a-uuid"}},
		{"non-UUID --customer on list", []string{"client", "list", "--customer", "12345"}},
		{"unknown customer", []string{"client", "create", "--customer", uuid.NewString()}},
		{"unknown customer on list", []string{"client", "list", "--customer", uuid.NewString()}},
		{"flag without value", []string{"client", "create", "--customer"}},
		{"empty --database", []string{"customer", "create", "--name", "X", "--database", ""}},
		{"stray argument on migrate", []string{"migrate", "extra"}},
		{"unknown flag on serve", []string{"serve", "--bogus"}},
		// A switch is bare, or exactly true or false.
		{"--yes=1", []string{"customer", "delete", "--id", cu.ID, "--yes=1"}},
		{"--yes=T", []string{"customer", "delete", "--id", cu.ID, "--yes=T"}},
		{"--json=TRUE", []string{"client", "list", "--customer", cu.ID, "--json=TRUE"}},
		{"--yaml=1", []string{"openapi", "--yaml=1"}},
		{"--json=0", []string{"version", "--json=0"}},
	}
	for _, tc := range cases {
		out, _, err := c.run(tc.args...)
		cliUsage(t, tc.name, err)
		if strings.Contains(out, `"id"`) {
			t.Errorf("%s: printed a created object", tc.name)
		}
	}
	if _, _, err := c.run("client", "list", "--customer", cu.ID, "--json=true"); err != nil {
		t.Errorf("--json=true: %v", err)
	}
	if _, _, err := c.run("client", "list", "--customer", cu.ID, "--json=false"); err != nil {
		t.Errorf("--json=false: %v", err)
	}
	// The customer whose deletion was given a switch of another spelling
	// is still there.
	if _, _, err := c.run("client", "list", "--customer", cu.ID); err != nil {
		t.Errorf("the customer is gone after refused deletions: %v", err)
	}
	// Nothing was created by the failed commands.
	var cls []cliClient
	out, _, err := c.run("client", "list", "--customer", cu.ID, "--json")
	if err != nil || json.Unmarshal([]byte(out), &cls) != nil || len(cls) != 0 {
		t.Errorf("failed commands left clients behind (err %v, %d clients)", err, len(cls))
	}
}

func TestCLIDatabaseFromEnvAndFlag(t *testing.T) {
	c := newCLIEnv(t)
	envDB := c.vars[config.EnvDatabase]
	flagDB := filepath.Join(t.TempDir(), "flag.db")

	// customer create: the env's database, unless --database.
	inEnv := c.customer("Env AB")
	var inFlag cliCustomer
	c.runJSON(&inFlag, "customer", "create", "--name", "Flag AB", "--database", flagDB, "--json")
	for _, p := range []string{envDB, flagDB} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("database file %s not created: %v", filepath.Base(p), err)
		}
	}

	// client create sees each customer only in its own database.
	var cl cliClient
	c.runJSON(&cl, "client", "create", "--customer", inEnv.ID, "--json")
	_, _, err := c.run("client", "create", "--customer", inEnv.ID, "--database", flagDB)
	cliUsage(t, "client create of an env-database customer in the --database database", err)
	_, _, err = c.run("client", "create", "--customer", inFlag.ID)
	cliUsage(t, "client create of a --database customer in the env database", err)
	var flagClient cliClient
	c.runJSON(&flagClient, "client", "create", "--customer", inFlag.ID, "--database", flagDB, "--json")

	// client list likewise.
	if _, _, err := c.run("client", "list", "--customer", inEnv.ID, "--json"); err != nil {
		t.Errorf("client list in the env database: %v", err)
	}
	_, _, err = c.run("client", "list", "--customer", inEnv.ID, "--database", flagDB)
	cliUsage(t, "client list of an env-database customer in the --database database", err)
	out, _, err := c.run("client", "list", "--customer", inFlag.ID, "--database", flagDB, "--json")
	if err != nil || !strings.Contains(out, flagClient.ID) {
		t.Errorf("client list --database: err %v, or the client is missing", err)
	}

	// client revoke likewise.
	_, _, err = c.run("client", "revoke", "--id", flagClient.ID)
	cliUsage(t, "client revoke of a --database client in the env database", err)
	if _, _, err := c.run("client", "revoke", "--id", flagClient.ID, "--database", flagDB); err != nil {
		t.Errorf("client revoke --database: %v", err)
	}
	if _, _, err := c.run("client", "revoke", "--id", cl.ID); err != nil {
		t.Errorf("client revoke in the env database: %v", err)
	}

	// migrate creates the database it is pointed at.
	migEnv := filepath.Join(t.TempDir(), "sub", "migrate-env.db")
	migFlag := filepath.Join(t.TempDir(), "migrate-flag.db")
	m := &cliEnv{t: t, vars: map[string]string{config.EnvDatabase: migEnv}}
	if _, _, err := m.run("migrate", "--database", migFlag); err != nil {
		t.Fatalf("migrate --database: %v", err)
	}
	if _, err := os.Stat(migFlag); err != nil {
		t.Errorf("migrate --database did not create the flag's database")
	}
	if _, err := os.Stat(migEnv); err == nil {
		t.Errorf("migrate --database used the env's database")
	}
	if _, _, err := m.run("migrate"); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if _, err := os.Stat(migEnv); err != nil {
		t.Errorf("migrate did not use the env's database")
	}
}

func TestCLIGeneratedKeyFile(t *testing.T) {
	db := filepath.Join(t.TempDir(), "accounts.db")
	c := &cliEnv{t: t, vars: map[string]string{config.EnvDatabase: db}}
	keyFile := (&config.Config{Database: db}).GeneratedKeyFile()
	if keyFile != db+".key" {
		t.Errorf("GeneratedKeyFile is not <db>.key")
	}

	out, stderr, err := c.run("customer", "create", "--name", "Key AB", "--json")
	if err != nil {
		t.Fatalf("customer create: %v", err)
	}
	var cu cliCustomer
	if json.Unmarshal([]byte(out), &cu) != nil || !cliIsUUID(cu.ID) {
		t.Fatalf("customer create printed no customer")
	}
	info, err := os.Stat(keyFile)
	if err != nil {
		t.Fatalf("key file not generated beside the database: %v", err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode %o, want 600", perm)
	}
	content, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(string(content))
	if _, err := seal.ParseMasterKey(key); err != nil {
		t.Errorf("key file does not hold a master key: %v", err)
	}
	if !strings.Contains(stderr, keyFile) {
		t.Errorf("stderr does not mention the generated key file")
	}
	if strings.Contains(stderr, key) || strings.Contains(out, key) {
		t.Errorf("the output contains the key")
	}
	if strings.Contains(stderr, key[:16]) {
		t.Errorf("stderr contains part of the key")
	}

	out2, stderr2, err := c.run("customer", "create", "--name", "Key AB 2", "--json")
	if err != nil {
		t.Fatalf("second customer create: %v", err)
	}
	again, err := os.ReadFile(keyFile)
	if err != nil || !bytes.Equal(again, content) {
		t.Errorf("the second run changed or removed the key file")
	}
	if strings.Contains(stderr2+out2, key) {
		t.Errorf("the second run's output contains the key")
	}

	// The customers made with the generated key work with it: a client
	// authenticates and the customer's keys open (a create seals a value).
	var cl cliClient
	c.runJSON(&cl, "client", "create", "--customer", cu.ID, "--json")
	app, err := OpenApp(context.Background(), config.Config{Database: db, KeyFile: keyFile}, cliDiscardLogger())
	if err != nil {
		t.Fatalf("OpenApp with the generated key file: %v", err)
	}
	defer app.Close()
	body := strings.NewReader(`{"street": "Nyckelgatan", "postal_code": "111 22", "city": "Stockholm", "country": "Sverige"}`)
	req, _ := http.NewRequest("POST", "/common/address/", body)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range cl.Headers {
		req.Header.Set(k, v)
	}
	rec := &cliRecorder{header: http.Header{}}
	app.Handler.ServeHTTP(rec, req)
	if rec.status != http.StatusCreated {
		t.Errorf("create with the generated key: status %d, want 201", rec.status)
	}
}

// cliRecorder is a minimal http.ResponseWriter.
type cliRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *cliRecorder) Header() http.Header { return r.header }
func (r *cliRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}
func (r *cliRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

func cliDiscardLogger() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

// cliBinDir holds the built command; TestMain removes it.
var cliBinDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if cliBinDir != "" {
		os.RemoveAll(cliBinDir)
	}
	os.Exit(code)
}

// cliBinary builds the accounts command once for the tests that run it.
var cliBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "accounts-cli-test")
	if err != nil {
		return "", err
	}
	cliBinDir = dir
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	bin := filepath.Join(dir, "accounts")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/accounts")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", errors.New("go build: " + err.Error() + ": " + string(out))
	}
	return bin, nil
})

func cliBuild(t *testing.T) string {
	t.Helper()
	bin, err := cliBinary()
	if err != nil {
		t.Fatalf("building the accounts command: %v", err)
	}
	return bin
}

// cliCleanEnv is the process environment without any ACCOUNTS_ variable.
func cliCleanEnv(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ACCOUNTS_") {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

// cliEnvWith is cliCleanEnv with vars (ACCOUNTS_ variables) set.
func cliEnvWith(vars map[string]string) []string {
	env := cliCleanEnv()
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

func TestCLIExitCodes(t *testing.T) {
	bin := cliBuild(t)
	db := filepath.Join(t.TempDir(), "accounts.db")
	cases := []struct {
		args []string
		want int
	}{
		{[]string{"customer", "create", "--name", "Exit AB", "--database", db}, 0},
		{[]string{"customer", "create", "--database", db}, 2},
		{[]string{"frobnicate"}, 2},
		{[]string{"client", "create", "--customer", "nope", "--database", db}, 2},
		{[]string{"client", "create", "--customer", uuid.NewString(), "--database", db}, 2},
		{[]string{"customer", "create", "--name", "X", "--bogus", "--database", db}, 2},
		{[]string{"keys", "rotate-data", "--settle", "-1s", "--database", db}, 2},
		// Shorter than a server keeps keys, or a wait of days.
		{[]string{"keys", "rotate-data", "--settle", "500us", "--database", db}, 2},
		{[]string{"keys", "rotate-data", "--settle", "59s", "--database", db}, 2},
		{[]string{"keys", "rotate-data", "--settle", "99999h", "--database", db}, 2},
		{[]string{"keys", "rotate-data", "--settle", "1m1m", "--database", db}, 2},
		{[]string{"keys", "rotate-data", "--settle", "+1m", "--database", db}, 2},
	}
	for i, tc := range cases {
		cmd := exec.Command(bin, tc.args...)
		cmd.Env = cliCleanEnv()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if code != tc.want {
			t.Errorf("case %d (%s): exit code %d, want %d", i, strings.Join(tc.args[:min(2, len(tc.args))], " "), code, tc.want)
		}
		if tc.want == 2 && stderr.Len() == 0 {
			t.Errorf("case %d: usage error without a message on stderr", i)
		}
	}
}

// cliLogLine is a JSON log line of serve.
type cliLogLine struct {
	Msg  string `json:"msg"`
	Addr string `json:"addr"`
}

func TestCLIServeDrainsOnSIGTERM(t *testing.T) {
	bin := cliBuild(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "accounts.db")
	// A customer and a client, made in-process in the same database (the
	// key file is generated beside it and serve reuses it).
	admin := &cliEnv{t: t, vars: map[string]string{config.EnvDatabase: db}}
	var cu cliCustomer
	admin.runJSON(&cu, "customer", "create", "--name", "Drain AB", "--json")
	var cl cliClient
	admin.runJSON(&cl, "client", "create", "--customer", cu.ID, "--json")

	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--database", db)
	cmd.Env = cliCleanEnv()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting serve: %v", err)
	}
	exited := make(chan error, 1)
	var logMu sync.Mutex
	var logLines []string
	addrCh := make(chan string, 1)
	scanDone := make(chan struct{})
	go func() {
		defer close(scanDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			logMu.Lock()
			logLines = append(logLines, line)
			logMu.Unlock()
			var l cliLogLine
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "listening" && l.Addr != "" {
				select {
				case addrCh <- l.Addr:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() {
		<-scanDone
		exited <- cmd.Wait()
	}()
	waited := false
	t.Cleanup(func() {
		if !waited {
			cmd.Process.Kill()
			<-exited
		}
	})

	var addr string
	select {
	case addr = <-addrCh:
	case err := <-exited:
		waited = true
		t.Fatalf("serve exited before listening: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatalf("serve logged no listening line with an addr")
	}
	if !regexp.MustCompile(`^127\.0\.0\.1:\d+$`).MatchString(addr) || strings.HasSuffix(addr, ":0") {
		t.Fatalf("listening addr %q is not the bound address", addr)
	}

	hc := &http.Client{Timeout: 5 * time.Second}
	healthy := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := hc.Get("http://" + addr + "/healthz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				healthy = true
				break
			}
		}
	}
	if !healthy {
		t.Fatalf("/healthz never answered 200")
	}
	resp, err := hc.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatalf("/readyz: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz: status %d, want 200", resp.StatusCode)
	}

	// An in-flight request: headers and half the body sent before SIGTERM,
	// the rest after. The drain lets it complete.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dialing serve: %v", err)
	}
	defer conn.Close()
	body := `{"name": "Drained Org", "custom_id": "in-flight"}`
	var head strings.Builder
	head.WriteString("POST /sales/organization/ HTTP/1.1\r\nHost: " + addr + "\r\n")
	head.WriteString("Content-Type: application/json\r\nConnection: close\r\n")
	head.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n")
	for k, v := range cl.Headers {
		head.WriteString(k + ": " + v + "\r\n")
	}
	head.WriteString("\r\n")
	half := len(body) / 2
	if _, err := io.WriteString(conn, head.String()+body[:half]); err != nil {
		t.Fatalf("writing the in-flight request: %v", err)
	}
	time.Sleep(300 * time.Millisecond) // the server has read the headers

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("sending SIGTERM: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-exited:
		waited = true
		t.Fatalf("serve exited with a request in flight: %v", err)
	default:
	}
	if _, err := io.WriteString(conn, body[half:]); err != nil {
		t.Fatalf("finishing the in-flight request: %v", err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	inflight, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Errorf("the in-flight request got no answer: %v", err)
	} else {
		io.Copy(io.Discard, inflight.Body)
		inflight.Body.Close()
		if inflight.StatusCode != http.StatusCreated {
			t.Errorf("the in-flight request: status %d, want 201", inflight.StatusCode)
		}
	}

	select {
	case err := <-exited:
		waited = true
		if err != nil {
			t.Errorf("serve exited with %v after SIGTERM, want exit code 0", err)
		}
		if code := cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("exit code %d, want 0", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("serve did not exit within 10 s of SIGTERM")
	}
	logMu.Lock()
	defer logMu.Unlock()
	stopped := false
	for _, line := range logLines {
		var l cliLogLine
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "stopped" {
			stopped = true
		}
	}
	if !stopped {
		t.Errorf("serve's log has no stopped line (%d lines)", len(logLines))
	}
	if _, err := hc.Get("http://" + addr + "/healthz"); err == nil {
		t.Errorf("the server still answers after exiting")
	}
}
