package crashtest

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // to run PRAGMA integrity_check on the data file

	"accounts/internal/config"
	"accounts/internal/servetest"
	"accounts/internal/store/sqlbuild"
	"accounts/internal/store/storetest"
)

const (
	kills   = 20 // kills per engine
	writers = 8  // goroutines writing while the kill comes
	// The kill comes this long after the load starts, at random in between:
	// long enough for a round to write a few hundred objects, short enough
	// for twenty rounds in well under a minute.
	minLoad = 50 * time.Millisecond
	maxLoad = 600 * time.Millisecond
	// Past this many objects a writer deletes instead of creating, so the
	// database stops growing: the checks after each restart (which list
	// every row) and the audit checks at the end (which read every entry)
	// stay within the time budget on a busy machine.
	maxLive = 100
)

// SQLite: the data file and its key store beside it, a master key from the
// environment (so no key file is generated).
func TestCrashSQLite(t *testing.T) {
	d := servetest.NewSQLiteDeployment(t)
	r := crash(t, d, nil)
	path := d.Env[config.EnvDatabase]
	integrityCheck(t, path, "tenants", "subtenants", "protected_identities")
	integrityCheck(t, path+".keys")
	r.verifyAudit()
	r.checkAuditEntries()
}

// PostgreSQL: the service process is killed, never PostgreSQL; the key store
// is a file, as on a single host.
func TestCrashPostgres(t *testing.T) {
	database := storetest.PostgresURL(t)
	u, err := url.Parse(database)
	if err != nil {
		t.Fatal(err)
	}
	// The service's sessions carry a name of their own, so the test can see
	// when PostgreSQL has ended the dead process's.
	app := fmt.Sprintf("accounts-crashtest-%x", rand.Uint64())
	q := u.Query()
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	var pg *sessionWatch
	r := crash(t, servetest.NewDeployment(t, u.String()), func() {
		if pg == nil {
			pg = watchSessions(t, database, app)
		}
		pg.waitGone()
	})
	if pg != nil {
		t.Logf("after %d of %d kills PostgreSQL still held sessions of the dead process, for up to %v",
			pg.lingered, kills, pg.longest.Round(time.Millisecond))
	}
	r.verifyAudit()
	r.checkAuditEntries()
}

// sessionWatch sees the service's PostgreSQL sessions by their
// application_name.
type sessionWatch struct {
	t        *testing.T
	conn     *pgx.Conn
	app      string
	lingered int           // kills after which sessions were still there
	longest  time.Duration // the longest they stayed
}

func watchSessions(t *testing.T, database, app string) *sessionWatch {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, database)
	if err != nil {
		t.Fatalf("connecting to PostgreSQL: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return &sessionWatch{t: t, conn: conn, app: app}
}

// waitGone waits until PostgreSQL has ended every session of the killed
// process. A write whose COMMIT the process had sent still commits after
// the process is gone: the server reads the message, flushes, and only then
// finds the connection closed. Until those sessions end, a write the kill
// cut off may still land, so the database is not yet in the state that
// the next restart must show and keep.
func (w *sessionWatch) waitGone() {
	start := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var n int
		err := w.conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", w.app).Scan(&n)
		cancel()
		if err != nil {
			w.t.Fatalf("reading pg_stat_activity: %v", err)
		}
		if n == 0 {
			break
		}
		if time.Since(start) > 30*time.Second {
			w.t.Fatalf("%d sessions of the killed process still open 30 s after the kill", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if d := time.Since(start); d > 5*time.Millisecond {
		w.lingered++
		w.longest = max(w.longest, d)
	}
}

// run is one engine's crash test: the deployment, its customer and client,
// the writers and their ledgers, and the totals for the closing log line.
type run struct {
	t        *testing.T
	d        *servetest.Deployment
	customer string
	headers  map[string]string // the client's seven X-PIGELLO-* headers
	ssns     []ssnVector
	workers  []*worker
	gone     map[string]bool // tokens of cut-off creates found absent after their restart
	stop     atomic.Bool     // the kill is coming: start no new write
	total    counts
}

// crash kills and restarts the server kills times under load, checking the
// ledger after every restart, then stops it cleanly. afterKill, unless nil,
// waits for the database to finish what the dead process left in it.
func crash(t *testing.T, d *servetest.Deployment, afterKill func()) *run {
	started := time.Now()
	customer := d.Customer("Crash AB")
	headers := d.Client(customer, "read_write")
	if len(headers) != 7 {
		t.Fatalf("client create printed %d headers, want 7", len(headers))
	}
	servetest.Binary(t) // built now, so that the first round's start time is the server's alone
	r := &run{t: t, d: d, customer: customer, headers: headers, ssns: loadSSNs(t), gone: map[string]bool{}}
	for i := range writers {
		r.workers = append(r.workers, &worker{r: r, n: i, rng: rand.New(rand.NewPCG(rand.Uint64(), uint64(i)))})
	}
	for round := 1; round <= kills; round++ {
		t0 := time.Now()
		srv := start(t, d)
		t1 := time.Now()
		r.check(srv)
		if t.Failed() {
			t.FailNow() // one broken rule is enough; the rounds after would repeat it
		}
		t2 := time.Now()
		before := r.total
		delay := minLoad + rand.N(maxLoad-minLoad)
		r.load(srv, delay)
		if afterKill != nil {
			afterKill()
		}
		w := r.total
		t.Logf("round %2d: start %4d ms, check %4d ms; killed after %3d ms: acknowledged %3d creates, %3d updates, %3d deletes; %d cut off",
			round, t1.Sub(t0).Milliseconds(), t2.Sub(t1).Milliseconds(), delay.Milliseconds(),
			w.creates-before.creates, w.updates-before.updates, w.deletes-before.deletes, w.cutOff-before.cutOff)
	}
	srv := start(t, d)
	r.check(srv)
	srv.stop()
	c := r.total
	t.Logf("%d kills in %v: acknowledged and checked %d creates, %d updates, %d deletes; %d writes cut off (%d found applied); "+
		"%d object checks after restarts (%d of them GET by id), %d rows listed and opened",
		kills, time.Since(started).Round(time.Millisecond), c.creates, c.updates, c.deletes, c.cutOff, c.cutOffApplied,
		c.objectChecks, c.gets, c.rows)
	if c.creates == 0 || c.updates == 0 || c.deletes == 0 || c.cutOff == 0 {
		t.Errorf("the load wrote too little to test anything: %+v", c)
	}
	return r
}

// load runs the writers until the kill, which comes after delay.
func (r *run) load(srv *server, delay time.Duration) {
	r.stop.Store(false)
	var wg sync.WaitGroup
	for _, w := range r.workers {
		w.srv, w.counts = srv, counts{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !r.stop.Load() && w.step() {
			}
		}()
	}
	time.Sleep(delay)
	r.stop.Store(true)
	srv.kill()
	wg.Wait()
	for _, w := range r.workers {
		r.total.add(w.counts)
	}
}

// verifyAudit runs `accounts audit verify --json` on the stopped
// deployment: every chain intact, and the writes recorded in one.
func (r *run) verifyAudit() {
	out, err := r.d.Run("audit", "verify", "--json")
	if err != nil {
		r.t.Errorf("audit verify: %v", err)
	}
	var chains []struct {
		CustomerID string `json:"customer_id"`
		Entries    int64  `json:"entries"`
		Intact     bool   `json:"intact"`
		BrokenAt   *int64 `json:"broken_at"`
	}
	if err := json.Unmarshal([]byte(out), &chains); err != nil {
		r.t.Fatalf("audit verify printed no JSON array: %v", err)
	}
	if len(chains) != 1 {
		r.t.Errorf("audit verify reported %d chains, want the one customer's", len(chains))
	}
	for _, c := range chains {
		if !c.Intact || c.BrokenAt != nil {
			r.t.Errorf("audit chain of customer %s broken at %v", c.CustomerID, c.BrokenAt)
		}
		if writes := int64(r.total.creates + r.total.updates + r.total.deletes); c.Entries < writes {
			r.t.Errorf("audit chain of customer %s has %d entries, fewer than the %d acknowledged writes", c.CustomerID, c.Entries, writes)
		}
		r.t.Logf("audit chain of customer %s: %d entries, intact %v", c.CustomerID, c.Entries, c.Intact)
	}
}

// checkAuditEntries holds the customer's audit trail against the ledger. A
// write and its entry commit together, kill or no kill, so every object that
// exists or existed has exactly one create entry, every object gone has
// exactly one delete or cascade_delete entry, and no write entry names an
// object that no write made (the entry of a cut-off write that did not
// happen).
func (r *run) checkAuditEntries() {
	out, err := r.d.Run("audit", "list", "--customer", r.customer, "--json")
	if err != nil {
		r.t.Fatalf("audit list: %v", err)
	}
	objects := map[string]*object{}
	for _, w := range r.workers {
		for _, o := range w.objects {
			objects[o.id] = o
		}
	}
	resource := map[string]string{tenantPath: "Tenant", piPath: "Protectedidentity"}
	type tally struct{ creates, deletes int }
	seen := map[string]*tally{}
	entries := 0
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var e struct {
			Action, Resource string
			ObjectIDs        []string `json:"object_ids"`
		}
		if err := dec.Decode(&e); err != nil {
			r.t.Fatalf("audit list printed a line that is not an entry: %v", err)
		}
		entries++
		if e.Action == "read" {
			continue
		}
		for _, id := range e.ObjectIDs {
			o := objects[id]
			if o == nil || resource[o.path] != e.Resource {
				r.t.Errorf("audit entry %s of %s %s: no write of this test made that object", e.Action, e.Resource, id)
				continue
			}
			if seen[id] == nil {
				seen[id] = &tally{}
			}
			switch e.Action {
			case "create":
				seen[id].creates++
			case "delete", "cascade_delete":
				seen[id].deletes++
			case "update":
			default:
				r.t.Errorf("audit entry of %s %s: action %q", o.kind(), id, e.Action)
			}
		}
	}
	wrong := 0
	for id, o := range objects {
		got, want := tally{}, tally{creates: 1}
		if seen[id] != nil {
			got = *seen[id]
		}
		if !o.present() {
			want.deletes = 1
		}
		if got != want {
			if wrong++; wrong <= 20 {
				r.t.Errorf("%s %s (%s): %d create and %d delete entries in the audit trail, want %d and %d",
					o.kind(), id, o.states[0], got.creates, got.deletes, want.creates, want.deletes)
			}
		}
	}
	if wrong > 20 {
		r.t.Errorf("... and %d more objects whose audit entries are wrong", wrong-20)
	}
	r.t.Logf("audit trail: %d entries checked against the %d objects ever written", entries, len(objects))
}

// integrityCheck runs SQLite's own consistency checks on a file the server
// has stopped using: the b-trees and indexes, the foreign keys (a cascade
// cut in half would leave an identity without its tenant), and that the
// FTS5 index of each of searchedTables is consistent and holds tokens of
// exactly the rows that have them (a write or delete whose index change
// was lost fails it).
func integrityCheck(t *testing.T, path string, searchedTables ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatalf("opening %s: %v", filepath.Base(path), err)
	}
	defer db.Close()
	var results []string
	rows, err := db.Query("PRAGMA integrity_check")
	if err != nil {
		t.Fatalf("integrity_check on %s: %v", filepath.Base(path), err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		results = append(results, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || results[0] != "ok" {
		t.Errorf("integrity_check on %s: %q, want ok", filepath.Base(path), results)
	}
	fk, err := db.Query("PRAGMA foreign_key_check")
	if err != nil {
		t.Fatalf("foreign_key_check on %s: %v", filepath.Base(path), err)
	}
	defer fk.Close()
	for fk.Next() {
		t.Errorf("foreign_key_check on %s: a row refers to a missing one", filepath.Base(path))
	}
	for _, table := range searchedTables {
		index := table + "_search"
		if _, err := db.Exec("INSERT INTO " + index + " (" + index + ", rank) VALUES ('integrity-check', 1)"); err != nil {
			t.Errorf("%s is not consistent: %v", index, err)
		}
		// The index holds the tokens of exactly the rows that have them.
		var strays int
		err := db.QueryRow(strings.NewReplacer("TABLE", table, "INDEX", index, "TOKENS", sqlbuild.TokensColumn).Replace(`SELECT
			(SELECT count(*) FROM TABLE WHERE TOKENS IS NOT NULL AND search_row NOT IN (SELECT rowid FROM INDEX)) +
			(SELECT count(*) FROM INDEX WHERE rowid NOT IN (SELECT search_row FROM TABLE WHERE TOKENS IS NOT NULL))`)).Scan(&strays)
		if err != nil || strays != 0 {
			t.Errorf("%s and %s: %d rows in one and not the other (%v)", index, table, strays, err)
		}
	}
	t.Logf("%s: integrity_check ok, foreign keys ok, %d search indexes ok", filepath.Base(path), len(searchedTables))
}

// ssnVector is a valid number of testdata/personnummer.json: the only
// numbers tests use (a number made up could be a living person's).
type ssnVector struct {
	Input     string `json:"input"`
	Canonical string `json:"canonical"`
}

func loadSSNs(t *testing.T) []ssnVector {
	t.Helper()
	data, err := os.ReadFile("../../testdata/personnummer.json")
	if err != nil {
		t.Fatalf("reading personnummer test vectors: %v", err)
	}
	var v struct{ Valid []ssnVector }
	if err := json.Unmarshal(data, &v); err != nil || len(v.Valid) == 0 {
		t.Fatalf("decoding personnummer test vectors: %v (%d valid)", err, len(v.Valid))
	}
	return v.Valid
}

// worker writes to its own objects only, one request at a time, so the
// order of its writes to an object is the order it sent them, and its
// ledger needs no lock.
type worker struct {
	r       *run
	n       int
	rng     *rand.Rand
	srv     *server
	seq     int
	objects []*object
	pending []*pending
	counts  counts // this round's
}

// outcome is what an answer tells the ledger.
type outcome int

const (
	acked    outcome = iota // the expected status, with a complete body
	cutOff                  // no answer: the write may or may not have happened
	refused                 // 429 or 503 until the kill came: nothing written
	notFound                // 404: the object is not there
	failed                  // any other answer: reported; the write's fate is unknown
)

// step sends one write chosen at random; false ends the worker's round (a
// write was cut off or failed, so the object's state is unknown until the
// restart settles it, and no later write may overtake it).
func (w *worker) step() bool {
	p := w.rng.IntN(100)
	if p < 40 || p >= 87 { // a create
		live := 0
		for _, o := range w.objects {
			if o.present() {
				live++
			}
		}
		if live >= maxLive {
			return w.delete()
		}
	}
	switch {
	case p < 25:
		return w.createTenant()
	case p < 40:
		return w.createIdentity()
	case p < 72:
		return w.update()
	case p < 87:
		return w.delete()
	default:
		return w.bulk()
	}
}

// send sends a write, decodes the answer into v (unless nil) and classifies
// it. 429 and 503 acknowledge nothing and change nothing: the write is sent
// again, until the kill is coming.
func (w *worker) send(method, path string, body any, want int, v any) outcome {
	for {
		status, data, err := w.srv.do(w.r.headers, method, path, body)
		switch {
		case err != nil:
			return cutOff
		case status == want:
			if v != nil && json.Unmarshal(data, v) != nil {
				w.r.t.Errorf("worker %d: %s %s: status %d with a body that is not the JSON expected", w.n, method, path, status)
				return failed
			}
			return acked
		case throttled(status):
			if w.r.stop.Load() {
				return refused
			}
			time.Sleep(20 * time.Millisecond)
		case status == http.StatusNotFound && method != "POST":
			return notFound
		default:
			w.r.t.Errorf("worker %d: %s %s: status %d, want %d", w.n, method, path, status, want)
			return failed
		}
	}
}

// person is a body of new values for a tenant or an identity. The values
// are made up except the identity number, which is a published test number.
func (w *worker) person() map[string]any {
	w.seq++
	ssn := w.r.ssns[w.rng.IntN(len(w.r.ssns))]
	return map[string]any{
		"first_name": fmt.Sprintf("Krasch%d", w.seq),
		"last_name":  fmt.Sprintf("Testsson%d-%d", w.n, w.seq),
		"email":      fmt.Sprintf("krasch.%d.%d@example.se", w.n, w.seq),
		"ssn":        ssn.Input,
	}
}

// token is a custom_id unique to this test: it finds a create that got no
// answer, and so no id.
func (w *worker) token() string {
	w.seq++
	return fmt.Sprintf("crash-%d-%d", w.n, w.seq)
}

// after is the compared fields an object will have once body is written
// over before (nil for a create): the identity number in its 12-digit form,
// a reference as its id.
func (w *worker) after(path string, before fields, body map[string]any) fields {
	f := fields{}
	for _, name := range compared(path) {
		f[name] = before[name]
		v, ok := body[name]
		if !ok {
			continue
		}
		switch x := v.(type) {
		case map[string]any:
			v = x["id"]
		case string:
			if name == "ssn" {
				for _, vec := range w.r.ssns {
					if vec.Input == x {
						v = vec.Canonical
					}
				}
			}
		}
		f[name] = v
	}
	return f
}

// adopt records an acknowledged create, checking that the answer holds what
// was sent.
func (w *worker) adopt(path string, obj map[string]any, want fields) *object {
	id, _ := obj["id"].(string)
	o := &object{id: id, path: path, token: want["custom_id"].(string)}
	if id == "" {
		w.r.t.Errorf("worker %d: a create of %s answered 201 without an id", w.n, path)
	} else if diff := differing(want, fieldsOf(path, obj)); len(diff) > 0 {
		w.r.t.Errorf("%s %s: the create's answer differs from what was sent in: %v", o.kind(), id, diff)
	}
	o.set(state{true, want})
	w.objects = append(w.objects, o)
	w.counts.creates++
	return o
}

// pick returns one of the worker's objects known to exist that ok accepts,
// or nil.
func (w *worker) pick(ok func(*object) bool) *object {
	var c []*object
	for _, o := range w.objects {
		if o.present() && ok(o) {
			c = append(c, o)
		}
	}
	if len(c) == 0 {
		return nil
	}
	return c[w.rng.IntN(len(c))]
}

func (w *worker) createTenant() bool {
	body := w.person()
	body["custom_id"] = w.token()
	want := w.after(tenantPath, nil, body)
	var obj map[string]any
	switch w.send("POST", tenantPath, body, http.StatusCreated, &obj) {
	case acked:
		w.adopt(tenantPath, obj, want)
		return true
	case refused:
		return false
	}
	w.counts.cutOff++
	w.pending = append(w.pending, &pending{path: tenantPath, items: []pendingItem{{token: body["custom_id"].(string), want: want}}})
	return false
}

func (w *worker) createIdentity() bool {
	t := w.pick(func(o *object) bool { return o.path == tenantPath && !o.piTried })
	if t == nil {
		return w.createTenant()
	}
	t.piTried = true
	body := w.person()
	body["custom_id"] = w.token()
	body["tenant"] = map[string]any{"id": t.id}
	want := w.after(piPath, nil, body)
	var obj map[string]any
	switch w.send("POST", piPath, body, http.StatusCreated, &obj) {
	case acked:
		o := w.adopt(piPath, obj, want)
		o.tenant, t.pi = t, o
		return true
	case refused:
		return false
	}
	w.counts.cutOff++
	w.pending = append(w.pending, &pending{path: piPath, items: []pendingItem{{token: body["custom_id"].(string), want: want, tenant: t}}})
	return false
}

// changes is a PATCH body: some of the personal fields, new values, now and
// then a null.
func (w *worker) changes() map[string]any {
	all := w.person()
	body := map[string]any{}
	for len(body) == 0 {
		for k, v := range all {
			if w.rng.IntN(2) == 0 {
				body[k] = v
			}
		}
	}
	if _, ok := body["email"]; ok && w.rng.IntN(5) == 0 {
		body["email"] = nil
	}
	if _, ok := body["ssn"]; ok && w.rng.IntN(5) == 0 {
		body["ssn"] = nil
	}
	return body
}

func (w *worker) update() bool {
	o := w.pick(func(*object) bool { return true })
	if o == nil {
		return w.createTenant()
	}
	body := w.changes()
	pre := o.states[0]
	post := state{true, w.after(o.path, pre.fields, body)}
	var obj map[string]any
	switch w.send("PATCH", o.path+o.id+"/", body, http.StatusOK, &obj) {
	case acked:
		if diff := differing(post.fields, fieldsOf(o.path, obj)); len(diff) > 0 {
			w.r.t.Errorf("%s %s: the update's answer differs from the fields it should have: %v", o.kind(), o.id, diff)
		}
		o.set(post)
		w.counts.updates++
		return true
	case notFound:
		w.r.t.Errorf("%s %s: known to exist, and PATCH answered 404", o.kind(), o.id)
		o.set(absent)
		return false
	case refused:
		return false
	}
	w.counts.cutOff++
	o.maybe(post)
	return false
}

func (w *worker) delete() bool {
	o := w.pick(func(*object) bool { return true })
	if o == nil {
		return w.createTenant()
	}
	res := w.send("DELETE", o.path+o.id+"/", nil, http.StatusNoContent, nil)
	pi := o.pi
	if pi != nil && !pi.present() {
		pi = nil
	}
	switch res {
	case acked:
		o.set(absent)
		if pi != nil {
			pi.set(absent) // the cascade
		}
		w.counts.deletes++
		return true
	case notFound:
		w.r.t.Errorf("%s %s: known to exist, and DELETE answered 404", o.kind(), o.id)
		o.set(absent)
		return false
	case refused:
		return false
	}
	w.counts.cutOff++
	o.maybe(absent)
	if pi != nil {
		pi.maybe(absent)
		pi.orphanOf = o
	}
	return false
}

// bulk creates two to four tenants in one request and, half the time,
// updates one more: all of it commits, or none.
func (w *worker) bulk() bool {
	p := &pending{path: tenantPath}
	var items []map[string]any
	for range 2 + w.rng.IntN(3) {
		body := w.person()
		body["custom_id"] = w.token()
		items = append(items, body)
		p.items = append(p.items, pendingItem{token: body["custom_id"].(string), want: w.after(tenantPath, nil, body)})
	}
	if u := w.pick(func(o *object) bool { return o.path == tenantPath }); u != nil && w.rng.IntN(2) == 0 {
		body := w.changes()
		p.update, p.pre = u, u.states[0]
		p.post = state{true, w.after(tenantPath, p.pre.fields, body)}
		body["id"] = u.id
		items = append(items, body)
	}
	var objs []map[string]any
	res := w.send("POST", tenantPath+"list/", items, http.StatusCreated, &objs)
	if res == acked && len(objs) == len(items) {
		for i, it := range p.items {
			w.adopt(tenantPath, objs[i], it.want)
		}
		if u := p.update; u != nil {
			if diff := differing(p.post.fields, fieldsOf(tenantPath, objs[len(objs)-1])); len(diff) > 0 {
				w.r.t.Errorf("tenant %s: the bulk update's answer differs from the fields it should have: %v", u.id, diff)
			}
			u.set(p.post)
			w.counts.updates++
		}
		return true
	}
	switch res {
	case refused:
		return false
	case acked:
		w.r.t.Errorf("worker %d: a bulk write answered 201 without one object per item", w.n)
	}
	w.counts.cutOff++
	if p.update != nil {
		p.update.maybe(p.post)
	}
	w.pending = append(w.pending, p)
	return false
}
