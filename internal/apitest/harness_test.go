package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"accounts/internal/cli"
	"accounts/internal/config"
	"accounts/internal/seal"
	"accounts/internal/servetest"
	"accounts/internal/store/storetest"
)

// suiteLog collects the server log of every test in the package, and
// personalValues every distinctive personal value a test sent; TestMain
// checks that none of the values appears in the log.
var (
	suiteLog       lockedBuffer
	personalMu     sync.Mutex
	personalValues = map[string]bool{}
)

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestMain(m *testing.M) {
	code := servetest.RunTests(m)
	personalMu.Lock()
	n := len(personalValues)
	leaked := 0
	logText := suiteLog.String()
	for v := range personalValues {
		if strings.Contains(logText, v) {
			leaked++
		}
	}
	personalMu.Unlock()
	// A run that sent no personal value (benchmarks only, or -run matching
	// no test) has nothing to check.
	if code == 0 && n > 0 {
		if !strings.Contains(logText, `"msg":"request"`) {
			fmt.Fprintln(os.Stderr, "suite log check: the server log is empty; the check would prove nothing")
			code = 1
		}
		if leaked > 0 {
			// The values themselves are not printed: they stand for personal data.
			fmt.Fprintf(os.Stderr, "suite log check: %d of %d personal values appear in the server log\n", leaked, n)
			code = 1
		}
	}
	// The OpenAPI coverage check needs the whole suite: not a -run, -bench
	// or -short selection.
	if code == 0 && n > 0 && wholeSuite() {
		code = checkCoverage()
	}
	if code == 0 && !onPostgres() {
		code = runPostgresPass()
	}
	os.Exit(code)
}

// personal registers distinctive personal values the test sends, for the
// suite's log check, and returns the first.
func personal(values ...string) string {
	personalMu.Lock()
	defer personalMu.Unlock()
	for _, v := range values {
		personalValues[v] = true
	}
	return values[0]
}

// env is one test's service: its own database (a SQLite file, or a fresh
// PostgreSQL schema in the PostgreSQL pass), key, and HTTP server.
type env struct {
	t      testing.TB
	dir    string
	cfg    config.Config
	vars   map[string]string
	app    *cli.App
	server *httptest.Server
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvWith(t, nil)
}

// newEnvWith is newEnv with a configuration of the test's own: configure,
// when not nil, changes it before the service opens (limits, say).
func newEnvWith(t testing.TB, configure func(*config.Config)) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir}
	e.vars = map[string]string{
		config.EnvDatabase:  filepath.Join(dir, "accounts.db"),
		config.EnvMasterKey: seal.GenerateMasterKey(),
		// The tests' rotations do not wait for servers to load new keys.
		config.EnvKeySettle: "0s",
	}
	if onPostgres() {
		// The key store stays a file: apart from the data, as it must be.
		e.vars[config.EnvDatabase] = storetest.PostgresURL(t)
		e.vars[config.EnvKeyStore] = filepath.Join(dir, "keys.db")
	}
	e.cfg = config.Config{Database: e.vars[config.EnvDatabase], MasterKey: e.vars[config.EnvMasterKey], KeyStore: e.vars[config.EnvKeyStore]}
	if configure != nil {
		configure(&e.cfg)
	}
	e.open()
	return e
}

// open starts the service of e.cfg.
func (e *env) open() {
	e.t.Helper()
	log := slog.New(slog.NewJSONHandler(&suiteLog, nil))
	app, err := cli.OpenApp(context.Background(), e.cfg, log)
	if err != nil {
		e.t.Fatalf("opening app: %v", err)
	}
	e.app = app
	server := httptest.NewServer(app.Handler)
	e.server = server
	e.t.Cleanup(func() {
		server.Close()
		app.Close()
	})
}

// sibling starts a second service on e's data, configured differently
// (the first goes on serving).
func (e *env) sibling(configure func(*config.Config)) *env {
	e.t.Helper()
	s := *e
	configure(&s.cfg)
	s.open()
	return &s
}

// run runs an accounts CLI command against this test's database.
func (e *env) run(args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	err = cli.Run(context.Background(), args, cli.IO{
		Env:    config.MapEnv(e.vars),
		Stdout: &out,
		Stderr: &errOut,
	})
	return out.String(), errOut.String(), err
}

// runJSON runs a CLI command that must succeed and decodes its JSON output.
func (e *env) runJSON(v any, args ...string) {
	e.t.Helper()
	out, _, err := e.run(append(args, "--json")...)
	if err != nil {
		e.t.Fatalf("accounts %s: %v", strings.Join(args[:2], " "), err)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		e.t.Fatalf("accounts %s printed no JSON: %v", strings.Join(args[:2], " "), err)
	}
}

// client is an API client of one customer.
type client struct {
	e          *env
	customerID string
	id         string
	headers    map[string]string
}

// newCustomer registers a customer and a read_write client for it.
func (e *env) newCustomer(name string) *client {
	e.t.Helper()
	var c struct {
		ID string `json:"id"`
	}
	e.runJSON(&c, "customer", "create", "--name", name)
	return e.newClient(c.ID, "read_write")
}

// newClient issues a client of the given scope for a customer.
func (e *env) newClient(customerID, scope string) *client {
	e.t.Helper()
	var c struct {
		ID      string            `json:"id"`
		Headers map[string]string `json:"headers"`
	}
	e.runJSON(&c, "client", "create", "--customer", customerID, "--scope", scope)
	return &client{e: e, customerID: customerID, id: c.ID, headers: c.Headers}
}

// response is an HTTP answer with its decoded JSON body.
type response struct {
	status  int
	header  http.Header
	raw     []byte
	obj     map[string]any // the body when it is an object
	objects []any          // the body when it is an array
}

// forTest returns a copy of c whose harness failures are reported on t, so
// that a subtest can use c.do and c.create.
func (c *client) forTest(t *testing.T) *client {
	e := *c.e
	e.t = t
	c2 := *c
	c2.e = &e
	return &c2
}

// do sends a request with the client's headers. body is marshalled to JSON
// unless it is a string or []byte, which is sent as is.
func (c *client) do(method, path string, body any) response {
	c.e.t.Helper()
	return c.e.send(method, path, body, c.headers, "application/json")
}

func (e *env) send(method, path string, body any, headers map[string]string, contentType string) response {
	e.t.Helper()
	return e.sendBody(e.server.URL, method, path, body, headers, contentType)
}

// sendTo sends a request without a body to another server.
func (e *env) sendTo(base, method, path string, headers map[string]string) response {
	e.t.Helper()
	return e.sendBody(base, method, path, nil, headers, "")
}

func (e *env) sendBody(base, method, path string, body any, headers map[string]string, contentType string) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil && contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	httpClient := &http.Client{
		Transport:     checkedTransport{t: e.t, next: http.DefaultTransport},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	return e.readResponse(resp)
}

// readResponse reads and closes an answer, decoding a JSON object or array.
func (e *env) readResponse(resp *http.Response) response {
	e.t.Helper()
	defer resp.Body.Close()
	r := response{status: resp.StatusCode, header: resp.Header}
	var err error
	r.raw, err = io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(r.raw) > 0 && r.raw[0] == '{' {
		json.Unmarshal(r.raw, &r.obj)
	} else if len(r.raw) > 0 && r.raw[0] == '[' {
		json.Unmarshal(r.raw, &r.objects)
	}
	return r
}

// create POSTs an object that must be created and returns it.
func (c *client) create(path string, body map[string]any) map[string]any {
	c.e.t.Helper()
	r := c.do("POST", path, body)
	if r.status != http.StatusCreated {
		c.e.t.Fatalf("POST %s: status %d, error keys %v", path, r.status, keys(r.obj))
	}
	return r.obj
}

// keys lists an error body's keys: safe to print, unlike its values.
func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// ref is the wire form of a reference.
func ref(obj map[string]any) map[string]any { return map[string]any{"id": obj["id"]} }

// Collection paths of the five resources.
const (
	piPath      = "/accounts/users/customer/protectedidentity/"
	tenantPath  = "/accounts/users/customer/tenant/"
	subPath     = "/accounts/users/customer/subtenant/"
	orgPath     = "/sales/organization/"
	addressPath = "/common/address/"
)

// pathLabel names a resource path in a subtest name or a failure message.
func pathLabel(path string) string {
	switch path {
	case piPath:
		return "pi"
	case tenantPath:
		return "tenant"
	case subPath:
		return "subtenant"
	case orgPath:
		return "org"
	case addressPath:
		return "address"
	}
	return "?"
}

// fixtures creates the objects a protected identity refers to.
type fixtures struct {
	org, tenant, sub, address map[string]any
}

func (c *client) fixtures() fixtures {
	c.e.t.Helper()
	f := fixtures{}
	f.org = c.create(orgPath, map[string]any{"name": "Org " + c.customerID[:8]})
	f.tenant = c.create(tenantPath, map[string]any{"first_name": personal("Tilda-fixture"), "organization": ref(f.org)})
	f.sub = c.create(subPath, map[string]any{"last_name": personal("Sixten-fixture")})
	f.address = c.create(addressPath, map[string]any{
		"street": personal("Fixturegatan"), "postal_code": personal("123 45"), "city": personal("Fixtureby"), "country": "Sverige",
	})
	return f
}

// ssnVector is a valid identity number of testdata/personnummer.json:
// the numbers tests use (a number made up could belong to a living person).
type ssnVector struct {
	Input     string `json:"input"`
	Canonical string `json:"canonical"`
}

// personnummerVectors is testdata/personnummer.json.
type personnummerVectors struct {
	Valid   []ssnVector `json:"valid"`
	Invalid []string    `json:"invalid"`
}

// loadPersonnummer reads the shared identity-number test vectors.
func loadPersonnummer(t testing.TB) personnummerVectors {
	t.Helper()
	data, err := os.ReadFile("../../testdata/personnummer.json")
	if err != nil {
		t.Fatalf("reading personnummer test vectors: %v", err)
	}
	var p personnummerVectors
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatalf("decoding personnummer test vectors: %v", err)
	}
	if len(p.Valid) == 0 || len(p.Invalid) == 0 {
		t.Fatal("personnummer test vectors are empty")
	}
	return p
}

// errorKeys asserts a 400 whose body has exactly the given error keys.
func errorKeys(t *testing.T, r response, want ...string) {
	t.Helper()
	if r.status != http.StatusBadRequest {
		t.Fatalf("status %d, want 400 (error keys %v)", r.status, keys(r.obj))
	}
	got := map[string]bool{}
	for _, k := range keys(r.obj) {
		got[k] = true
	}
	for _, k := range want {
		if !got[k] {
			t.Errorf("error body lacks key %q; has %v", k, keys(r.obj))
		}
		delete(got, k)
	}
	for k := range got {
		t.Errorf("error body has unexpected key %q", k)
	}
}
