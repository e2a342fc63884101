package cli

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"accounts/internal/config"

	"github.com/google/uuid"
)

// cliAuditEntry is one line of `audit list --json`.
type cliAuditEntry struct {
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

// cliAuditList runs `audit list --json` with args and decodes its lines.
func (c *cliEnv) cliAuditList(args ...string) []cliAuditEntry {
	c.t.Helper()
	out, _, err := c.run(append([]string{"audit", "list", "--json"}, args...)...)
	if err != nil {
		c.t.Fatalf("audit list: %v", err)
	}
	var entries []cliAuditEntry
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			c.t.Fatalf("audit list --json: line %d is not a JSON object", len(entries)+1)
		}
		cliSameKeys(c.t, "audit list --json line", m, "position", "time", "customer_id", "client_id", "request_id",
			"action", "resource", "object_ids", "fields", "hash")
		var e cliAuditEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			c.t.Fatal(err)
		}
		entries = append(entries, e)
	}
	return entries
}

func cliAuditPositions(entries []cliAuditEntry) []int64 {
	out := make([]int64, len(entries))
	for i, e := range entries {
		out[i] = e.Position
	}
	return out
}

// cliAuditApp is the service over a cliEnv's database, driven in-process.
type cliAuditApp struct {
	t   *testing.T
	app *App
}

func (c *cliEnv) cliAuditApp() *cliAuditApp {
	c.t.Helper()
	app, err := OpenApp(context.Background(), config.Config{
		Database: c.vars[config.EnvDatabase], MasterKey: c.vars[config.EnvMasterKey],
	}, cliDiscardLogger())
	if err != nil {
		c.t.Fatalf("opening the app: %v", err)
	}
	c.t.Cleanup(func() { app.Close() })
	return &cliAuditApp{t: c.t, app: app}
}

// do sends one request as client cl and returns the status and decoded body.
func (a *cliAuditApp) do(cl cliClient, method, path string, body any, want int) map[string]any {
	a.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	} else {
		rd = bytes.NewReader(nil)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range cl.Headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	a.app.Handler.ServeHTTP(rec, req)
	if rec.Code != want {
		a.t.Fatalf("%s %s: status %d, want %d", method, path, rec.Code, want)
	}
	var obj map[string]any
	json.Unmarshal(rec.Body.Bytes(), &obj)
	// Entries' times are microseconds: keep operations apart in time.
	time.Sleep(3 * time.Millisecond)
	return obj
}

const (
	cliTenantPath = "/accounts/users/customer/tenant/"
	cliPIPath     = "/accounts/users/customer/protectedidentity/"
)

func TestCLIAuditUsageErrors(t *testing.T) {
	c := newCLIEnv(t)
	cu := c.customer("Audit Usage AB")
	cases := []struct {
		what string
		args []string
	}{
		{"audit without subcommand", []string{"audit"}},
		{"unknown audit subcommand", []string{"audit", "frobnicate"}},
		{"list without --customer", []string{"audit", "list"}},
		{"list without --customer, with --json", []string{"audit", "list", "--json"}},
		{"list with an empty --customer", []string{"audit", "list", "--customer", ""}},
		{"list with a bad --customer", []string{"audit", "list", "--customer", "not-a-uuid"}},
		{"list with a bad --since", []string{"audit", "list", "--customer", cu.ID, "--since", "yesterday"}},
		{"list with an impossible date --since", []string{"audit", "list", "--customer", cu.ID, "--since", "2026-02-30"}},
		{"list with a date and hour --since", []string{"audit", "list", "--customer", cu.ID, "--since", "2026-01-02T03"}},
		{"list with an impossible --since", []string{"audit", "list", "--customer", cu.ID, "--since", "2026-13-01T00:00:00Z"}},
		{"list with a --since without zone", []string{"audit", "list", "--customer", cu.ID, "--since", "2026-01-02T03:04:05"}},
		{"list with a bad --object", []string{"audit", "list", "--customer", cu.ID, "--object", "nope"}},
		{"list with a short --object", []string{"audit", "list", "--customer", cu.ID, "--object", uuid.NewString()[:30]}},
		{"list with an unknown flag", []string{"audit", "list", "--customer", cu.ID, "--bogus"}},
		{"list with a stray argument", []string{"audit", "list", "--customer", cu.ID, "extra"}},
		{"verify with a bad --customer", []string{"audit", "verify", "--customer", "not-a-uuid"}},
		{"verify with an unknown flag", []string{"audit", "verify", "--bogus"}},
		{"verify with a stray argument", []string{"audit", "verify", "extra"}},
		// An empty value is no value: not "no anchor to check".
		{"verify with an empty --anchor", []string{"audit", "verify", "--anchor="}},
		{"list with an empty --since", []string{"audit", "list", "--customer", cu.ID, "--since", ""}},
	}
	for _, tc := range cases {
		_, _, err := c.run(tc.args...)
		cliUsage(t, tc.what, err)
		if ErrChainBroken(err) {
			t.Errorf("%s: a usage error reported as a broken chain", tc.what)
		}
	}
	// The well-formed forms of the same commands succeed.
	for _, args := range [][]string{
		{"audit", "list", "--customer", cu.ID},
		{"audit", "list", "--customer", cu.ID, "--since", "2026-01-02T03:04:05Z", "--object", uuid.NewString(), "--json"},
		{"audit", "list", "--customer", cu.ID, "--since", "2026-01-02T03:04:05.123456+02:00"},
		{"audit", "list", "--customer", cu.ID, "--since", "2026-01-02"},
		{"audit", "verify"},
		{"audit", "verify", "--customer", cu.ID, "--json"},
	} {
		if _, _, err := c.run(args...); err != nil {
			t.Errorf("accounts %s: %v", strings.Join(args[:2], " "), err)
		}
	}
}

func TestCLIAuditListFilters(t *testing.T) {
	c := newCLIEnv(t)
	cu := c.customer("Audit Filter AB")
	var cl cliClient
	c.runJSON(&cl, "client", "create", "--customer", cu.ID, "--json")
	other := c.customer("Audit Filter Other AB")
	var ocl cliClient
	c.runJSON(&ocl, "client", "create", "--customer", other.ID, "--json")
	app := c.cliAuditApp()

	a := app.do(cl, "POST", cliTenantPath, map[string]any{"first_name": "Filtertest-A"}, 201) // 1
	b := app.do(cl, "POST", cliTenantPath, map[string]any{"last_name": "Filtertest-B"}, 201)  // 2
	aID, bID := a["id"].(string), b["id"].(string)
	app.do(cl, "GET", cliTenantPath+aID+"/", nil, 200)                                              // 3
	app.do(cl, "PATCH", cliTenantPath+bID+"/", map[string]any{"email": "b.filter@example.se"}, 200) // 4
	app.do(cl, "GET", cliTenantPath, nil, 200)                                                      // 5: both
	pi := app.do(cl, "POST", cliPIPath, map[string]any{"tenant": map[string]any{"id": bID}}, 201)   // 6
	app.do(cl, "DELETE", cliTenantPath+bID+"/", nil, 204)                                           // 7, 8: b and its identity
	app.do(ocl, "POST", cliTenantPath, map[string]any{"first_name": "Filtertest-Other"}, 201)
	piID := pi["id"].(string)

	all := c.cliAuditList("--customer", cu.ID)
	if len(all) != 8 {
		t.Fatalf("audit list: %d entries, want 8", len(all))
	}
	for i, e := range all {
		if e.Position != int64(i+1) || e.CustomerID != cu.ID || e.ClientID != cl.ID {
			t.Errorf("entry %d: position %d, customer or client not the one that made it", i+1, e.Position)
		}
	}
	if n := len(c.cliAuditList("--customer", other.ID)); n != 1 {
		t.Errorf("the other customer's list has %d entries, want 1", n)
	}

	// --object: the entries whose object ids include it (the order of the
	// two entries of the cascading delete is not fixed).
	with := func(id string) []int64 {
		var out []int64
		for _, e := range all {
			if slices.Contains(e.ObjectIDs, id) {
				out = append(out, e.Position)
			}
		}
		return out
	}
	for _, tc := range []struct {
		what  string
		id    string
		owner string
		n     int
	}{
		{"tenant a", aID, aID, 3}, // create, read, list
		{"tenant b", bID, bID, 4}, // create, update, list, delete
		{"tenant a in upper case", strings.ToUpper(aID), aID, 3},
		{"the identity", piID, piID, 2}, // create, cascade_delete
		{"an unknown object", uuid.NewString(), "", 0},
	} {
		want := with(tc.owner)
		if len(want) != tc.n {
			t.Errorf("%s: the full list has %d entries about it, want %d", tc.what, len(want), tc.n)
		}
		got := cliAuditPositions(c.cliAuditList("--customer", cu.ID, "--object", tc.id))
		if !slices.Equal(got, want) {
			t.Errorf("--object %s: positions %v, want %v", tc.what, got, want)
		}
	}

	// --since: the entries at or after the time, in any zone's notation.
	times := make([]time.Time, len(all))
	for i, e := range all {
		ts, err := time.Parse(time.RFC3339Nano, e.Time)
		if err != nil {
			t.Fatalf("entry %d: time is not RFC 3339", i+1)
		}
		times[i] = ts
	}
	since := func(cut time.Time) []int64 {
		var out []int64
		for i, ts := range times {
			if !ts.Before(cut) {
				out = append(out, int64(i+1))
			}
		}
		return out
	}
	for _, tc := range []struct {
		what string
		cut  time.Time
	}{
		{"the first entry's time", times[0]},
		{"the fourth entry's time", times[3]},
		{"a microsecond after the fourth entry", times[3].Add(time.Microsecond)},
		{"the last entry's time", times[7]},
		{"long ago", times[0].Add(-24 * time.Hour)},
		{"the future", time.Now().Add(time.Hour)},
	} {
		for _, zone := range []*time.Location{time.UTC, time.FixedZone("", 2*3600), time.FixedZone("", -5*3600)} {
			arg := tc.cut.In(zone).Format(time.RFC3339Nano)
			got := cliAuditPositions(c.cliAuditList("--customer", cu.ID, "--since", arg))
			if want := since(tc.cut); !slices.Equal(got, want) {
				t.Errorf("--since %s (zone offset %v): positions %v, want %v", tc.what, zone, got, want)
			}
		}
	}
	// A date is its midnight, UTC.
	for _, day := range []time.Time{times[0], times[7], times[7].AddDate(0, 0, 1), times[0].AddDate(0, 0, -1)} {
		midnight := time.Date(day.UTC().Year(), day.UTC().Month(), day.UTC().Day(), 0, 0, 0, 0, time.UTC)
		got := cliAuditPositions(c.cliAuditList("--customer", cu.ID, "--since", midnight.Format(time.DateOnly)))
		if want := since(midnight); !slices.Equal(got, want) {
			t.Errorf("--since the date %s: positions %v, want %v", midnight.Format(time.DateOnly), got, want)
		}
	}
	if got := cliAuditPositions(c.cliAuditList("--customer", cu.ID, "--since", times[0].Add(time.Hour).Format(time.RFC3339))); len(got) != 0 {
		t.Errorf("--since an hour after the first entry: positions %v, want none", got)
	}
	// Both filters together.
	var want []int64
	for _, p := range with(bID) {
		if !times[p-1].Before(times[3]) {
			want = append(want, p)
		}
	}
	if got := cliAuditPositions(c.cliAuditList("--customer", cu.ID, "--object", bID, "--since", times[3].Format(time.RFC3339Nano))); !slices.Equal(got, want) {
		t.Errorf("--object b --since the fourth entry: positions %v, want %v", got, want)
	}

	// The text form prints one line per entry, filtered alike.
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"--customer", cu.ID}, 8},
		{[]string{"--customer", cu.ID, "--object", aID}, 3},
		{[]string{"--customer", cu.ID, "--since", times[6].Format(time.RFC3339Nano)}, len(since(times[6]))},
	} {
		out, _, err := c.run(append([]string{"audit", "list"}, tc.args...)...)
		if err != nil {
			t.Fatalf("audit list (text): %v", err)
		}
		lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
		if out == "" {
			lines = nil
		}
		if len(lines) != tc.want {
			t.Errorf("audit list %v (text): %d lines, want %d", len(tc.args), len(lines), tc.want)
		}
		for i, l := range lines {
			if json.Valid([]byte(l)) {
				t.Errorf("audit list (text): line %d is JSON without --json", i+1)
			}
		}
	}
}

// cliAuditTamper edits one stored entry behind the service's back.
func cliAuditTamper(t *testing.T, db, customerID string, position int) {
	t.Helper()
	conn, err := sql.Open("sqlite", "file:"+(&url.URL{Path: db}).EscapedPath()+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	res, err := conn.Exec(`UPDATE audit_entries SET action = 'delete' WHERE customer_id = ? AND position = ?`, customerID, position)
	if err != nil {
		t.Fatalf("tampering: %v", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("tampering changed %d rows, want 1", n)
	}
}

func TestCLIAuditVerifyExitStatus(t *testing.T) {
	bin := cliBuild(t)
	c := newCLIEnv(t)
	db := c.vars[config.EnvDatabase]
	cu := c.customer("Audit Exit AB")
	other := c.customer("Audit Exit Other AB")
	var cl, ocl cliClient
	c.runJSON(&cl, "client", "create", "--customer", cu.ID, "--json")
	c.runJSON(&ocl, "client", "create", "--customer", other.ID, "--json")
	app := c.cliAuditApp()
	tn := app.do(cl, "POST", cliTenantPath, map[string]any{"first_name": "Exittest-A"}, 201)
	app.do(cl, "GET", cliTenantPath+tn["id"].(string)+"/", nil, 200)
	app.do(cl, "GET", cliTenantPath, nil, 200)
	app.do(ocl, "POST", cliTenantPath, map[string]any{"first_name": "Exittest-B"}, 201)

	runBin := func(args ...string) (int, string, string) {
		t.Helper()
		cmd := exec.Command(bin, append(args, "--database", db)...)
		cmd.Env = cliCleanEnv()
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			return ee.ExitCode(), stdout.String(), stderr.String()
		case err != nil:
			t.Fatalf("running accounts: %v", err)
		}
		return 0, stdout.String(), stderr.String()
	}

	if code, _, _ := runBin("audit", "verify"); code != 0 {
		t.Errorf("verify of intact chains: exit %d, want 0", code)
	}
	if _, _, err := c.run("audit", "verify"); err != nil {
		t.Errorf("verify of intact chains (in-process): %v", err)
	}
	if code, _, _ := runBin("audit", "list"); code != 2 {
		t.Errorf("audit list without --customer: exit %d, want 2", code)
	}

	cliAuditTamper(t, db, cu.ID, 2)

	code, stdout, _ := runBin("audit", "verify")
	if code != 1 {
		t.Errorf("verify of a tampered chain: exit %d, want 1", code)
	}
	if !strings.Contains(stdout, "broken at position 2") {
		t.Errorf("verify of a tampered chain does not say where it is broken")
	}
	_, _, err := c.run("audit", "verify")
	var ue *UsageError
	if !ErrChainBroken(err) || errors.As(err, &ue) {
		t.Errorf("verify of a tampered chain (in-process): error %v, want the broken-chain error only", err)
	}
	code, stdout, _ = runBin("audit", "verify", "--customer", cu.ID, "--json")
	var res []struct {
		CustomerID string `json:"customer_id"`
		Intact     bool   `json:"intact"`
		BrokenAt   *int64 `json:"broken_at"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("verify --json printed no JSON array: %v", err)
	}
	if code != 1 || len(res) != 1 || res[0].CustomerID != cu.ID || res[0].Intact || res[0].BrokenAt == nil || *res[0].BrokenAt != 2 {
		t.Errorf("verify --customer --json of the tampered chain: exit %d, results %+v, want exit 1 and broken at 2", code, res)
	}
	// Another customer's chain is still intact and verifies alone.
	if code, _, _ := runBin("audit", "verify", "--customer", other.ID); code != 0 {
		t.Errorf("verify --customer of an intact chain beside a broken one: exit %d, want 0", code)
	}
	// The list still prints a tampered chain: it is evidence.
	if n := len(c.cliAuditList("--customer", cu.ID)); n != 3 {
		t.Errorf("audit list of the tampered chain: %d entries, want 3", n)
	}
}

// cliAuditSQL runs statements on the data's SQLite file behind the
// service's back.
func cliAuditSQL(t *testing.T, db string, stmts ...string) {
	t.Helper()
	conn, err := sql.Open("sqlite", "file:"+(&url.URL{Path: db}).EscapedPath()+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, s := range stmts {
		if _, err := conn.Exec(s); err != nil {
			t.Fatalf("tampering: %v", err)
		}
	}
}

// What the chain alone can't tell — its end cut with the head moved back,
// or its rows and head erased — an anchor kept elsewhere does: audit verify
// --json of an earlier day, given back with --anchor. A chain that only
// grew since its anchor passes.
func TestCLIAuditVerifyAnchor(t *testing.T) {
	c := newCLIEnv(t)
	db := c.vars[config.EnvDatabase]
	cu := c.customer("Anchor AB")
	var cl cliClient
	c.runJSON(&cl, "client", "create", "--customer", cu.ID, "--json")
	app := c.cliAuditApp()
	tn := app.do(cl, "POST", cliTenantPath, map[string]any{"first_name": "Anchortest"}, 201)
	for range 4 {
		app.do(cl, "GET", cliTenantPath+tn["id"].(string)+"/", nil, 200)
	}
	anchored, _, err := c.run("audit", "verify", "--json")
	if err != nil {
		t.Fatalf("audit verify --json: %v", err)
	}
	anchor := filepath.Join(t.TempDir(), "anchor.json")
	if err := os.WriteFile(anchor, []byte(anchored), 0o600); err != nil {
		t.Fatal(err)
	}
	// More entries since: the chain grew past its anchor.
	app.do(cl, "GET", cliTenantPath+tn["id"].(string)+"/", nil, 200)
	if _, _, err := c.run("audit", "verify", "--anchor", anchor); err != nil {
		t.Fatalf("a chain grown past its anchor: %v", err)
	}

	// The last three entries cut, and the head moved back to the one
	// before them.
	cut := fmt.Sprintf(`DELETE FROM audit_entries WHERE customer_id = '%[1]s' AND position > (SELECT position - 3 FROM audit_heads WHERE customer_id = '%[1]s');
		UPDATE audit_heads SET position = position - 3, hash = (SELECT hash FROM audit_entries e WHERE e.customer_id = '%[1]s'
			AND e.position = audit_heads.position - 3) WHERE customer_id = '%[1]s'`, cu.ID)
	cliAuditSQL(t, db, cut)
	if _, _, err := c.run("audit", "verify"); err != nil {
		t.Fatalf("the end cut with its head: the chain alone finds %v (the test assumes it can't)", err)
	}
	for _, args := range [][]string{{"--anchor", anchor}, {"--anchor", anchor, "--customer", cu.ID}} {
		if _, _, err := c.run(append([]string{"audit", "verify"}, args...)...); !ErrChainBroken(err) {
			t.Errorf("the end cut with its head, verify %v: error %v, want a broken chain", args, err)
		}
	}

	// The whole chain and its head erased.
	cliAuditSQL(t, db, fmt.Sprintf(`DELETE FROM audit_entries WHERE customer_id = '%[1]s'; DELETE FROM audit_heads WHERE customer_id = '%[1]s'`, cu.ID))
	if _, _, err := c.run("audit", "verify"); err != nil {
		t.Fatalf("the chain erased: the chain alone finds %v (the test assumes it can't)", err)
	}
	out, _, err := c.run("audit", "verify", "--anchor", anchor, "--json")
	var res []struct {
		CustomerID string `json:"customer_id"`
		Intact     bool   `json:"intact"`
		BrokenAt   *int64 `json:"broken_at"`
	}
	if jerr := json.Unmarshal([]byte(out), &res); !ErrChainBroken(err) || jerr != nil || len(res) != 1 ||
		res[0].CustomerID != cu.ID || res[0].Intact || res[0].BrokenAt == nil || *res[0].BrokenAt != 1 {
		t.Errorf("the chain erased, verify --anchor: error %v, results %+v; want broken at 1", err, res)
	}

	// An anchor that is not a passing verify's output is refused.
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`[{"customer_id": "`+cu.ID+`", "entries": 3, "intact": false, "broken_at": 2}]`), 0o600)
	if _, _, err := c.run("audit", "verify", "--anchor", bad); !errors.As(err, new(*UsageError)) {
		t.Errorf("an anchor of a broken chain: error %v, want a usage error", err)
	}
	// Nor is one that only looks like it: an unknown key, a chain named
	// twice, anything after the array, null.
	var good []map[string]any
	if err := json.Unmarshal([]byte(anchored), &good); err != nil || len(good) != 1 {
		t.Fatalf("the anchor: %v", err)
	}
	withKey := maps.Clone(good[0])
	withKey["checked"] = true
	for name, v := range map[string]any{"an unknown key": []any{withKey}, "a chain twice": []any{good[0], good[0]}} {
		data, _ := json.Marshal(v)
		os.WriteFile(bad, data, 0o600)
		if _, _, err := c.run("audit", "verify", "--anchor", bad); !errors.As(err, new(*UsageError)) {
			t.Errorf("an anchor with %s: error %v, want a usage error", name, err)
		}
	}
	for name, data := range map[string]string{"something after it": anchored + "[]", "null": "null"} {
		os.WriteFile(bad, []byte(data), 0o600)
		if _, _, err := c.run("audit", "verify", "--anchor", bad); !errors.As(err, new(*UsageError)) {
			t.Errorf("an anchor with %s: error %v, want a usage error", name, err)
		}
	}
}
