package apitest

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// dialRaw opens a connection to the test server and writes a request head
// (and the start of a body, which need not be whole) as bytes, past Go's
// client, which would refuse or re-encode some of them.
func (e *env) dialRaw(method, target string, headers map[string]string, body string) net.Conn {
	e.t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(e.server.URL, "http://"), 5*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: test\r\n")
	for k, v := range headers {
		b.WriteString(k + ": " + v + "\r\n")
	}
	b.WriteString("\r\n" + body)
	if _, err := conn.Write([]byte(b.String())); err != nil {
		e.t.Fatal(err)
	}
	return conn
}

// rawRequest sends a whole request as bytes (see dialRaw) and reads the
// answer.
func (e *env) rawRequest(method, target string, headers map[string]string, body string) response {
	e.t.Helper()
	h := httpWithHeaders(headers, map[string]string{"Connection": "close"})
	if body != "" {
		h["Content-Length"] = strconv.Itoa(len(body))
	}
	conn := e.dialRaw(method, target, h, body)
	defer conn.Close()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		e.t.Fatalf("%s: reading the answer: %v", method, err)
	}
	return e.readResponse(resp)
}

// count returns how many objects the client's customer has at path.
func (c *client) count(path string) int {
	c.e.t.Helper()
	r := c.do("GET", path+"list/?_statistics=true&_page=1&_page_size=1", nil)
	if r.status != http.StatusOK {
		c.e.t.Fatalf("count %s: status %d", pathLabel(path), r.status)
	}
	stats, _ := r.obj["statistics"].(map[string]any)
	n, _ := stats["count"].(float64)
	return int(n)
}

// A query string that does not decode exactly is a 400 naming the
// parameter (or non_field_errors when the name itself does not decode),
// never a list with the broken filter dropped: that would answer a lookup
// of one person with everyone.
func TestHostileQueryStrings(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Hostile Query AB")
	f := c.fixtures()
	c.create(piPath, map[string]any{"tenant": ref(f.tenant), "first_name": personal("Hostile-Querytarget")})
	cases := []struct {
		query string
		key   string
	}{
		{"ssn=%GG", "ssn"},
		{"first_name=%zz", "first_name"},
		{"first_name=Nope;x=1", "first_name"},
		{"first_name=Nope%3Bx=1&x;y=2", "non_field_errors"},
		{"%GG=1", "non_field_errors"},
		{"=1", "non_field_errors"},
		{"first_name=%", "first_name"},
		{"first_name=%4", "first_name"},
		{"first_name=%FF%FEX", "first_name"},   // not UTF-8
		{"first_name=%C0%AF", "first_name"},    // an overlong encoding
		{"first_name=%ED%A0%80", "first_name"}, // an encoded surrogate
		{"first_name=a%00b", "first_name"},
		{"first_name=a%0Ab", "first_name"},
		{"first_name=a%7Fb", "first_name"},
		{"first_name=\xff", "first_name"}, // a raw byte that is not UTF-8
		{"first%FF=1", "non_field_errors"},
		{"_page=9223372036854775807&_page_size=2", "_page"},
		{"_page=2147483649&_page_size=1", "_page"},
		{"_page=1073741825&_page_size=2", "_page"},
		{"_page=%2B1&_page_size=1", "_page"},
		{"_page=01&_page_size=1", "_page"},
		{"_page=1&_page_size=1e3", "_page_size"},
		{"_page=1&_page_size=%201", "_page_size"},
		{"custom_id=a&custom_id=b", "custom_id"},
		{"created_at__gt=2026-01-01T00:00:00%2B01:00x", "created_at__gt"},
	}
	for _, path := range []string{piPath, piPath + "list/"} {
		for _, tc := range cases {
			r := e.rawRequest("GET", path+"?"+tc.query, c.headers, "")
			if r.status != http.StatusBadRequest {
				t.Errorf("%s ?%q: status %d, want 400", pathLabel(path), tc.query, r.status)
				continue
			}
			if r.obj == nil || r.obj[tc.key] == nil || len(r.obj) != 1 {
				t.Errorf("%s ?%q: error keys %v, want [%s]", pathLabel(path), tc.query, keys(r.obj), tc.key)
			}
		}
	}
	// The largest page whose offset fits is a page past the end, not an error.
	r := c.do("GET", piPath+"?_page=2147483648&_page_size=1", nil)
	if r.status != http.StatusOK || len(r.objects) != 0 {
		t.Errorf("page at the offset bound: status %d, %d objects", r.status, len(r.objects))
	}
	// Number filters take JSON's number grammar only.
	for _, v := range []string{"NaN", "Inf", "-Inf", "0x10", "1_0", "1.", ".5", "+1"} {
		r := e.rawRequest("GET", addressPath+"?latitude="+strings.ReplaceAll(v, "+", "%2B"), c.headers, "")
		if r.status != http.StatusBadRequest || r.obj["latitude"] == nil {
			t.Errorf("latitude=%s: status %d, keys %v, want a 400 on latitude", v, r.status, keys(r.obj))
		}
	}
	if r := c.do("GET", addressPath+"?latitude__gte=-1.5e1", nil); r.status != http.StatusOK {
		t.Errorf("latitude__gte=-1.5e1: status %d, want 200", r.status)
	}
	// "+" is a space and an encoded ";" is a character, as they should be.
	if r := c.do("GET", piPath+"?custom_id=a+b%3Bc", nil); r.status != http.StatusOK {
		t.Errorf("custom_id with + and %%3B: status %d, want 200", r.status)
	}
}

// A query parameter on a route that takes none is refused, never ignored,
// and the write it came with does not happen.
func TestHostileQueryOnObjectRoutes(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Hostile Object AB")
	org := c.create(orgPath, map[string]any{"name": "Hostile Org"})
	obj := orgPath + org["id"].(string) + "/"
	for _, rq := range []struct {
		method, target, body string
	}{
		{"GET", obj + "?_slim=true", ""},
		{"GET", obj + "?%GG", ""},
		{"GET", obj + "?&x", ""},
		{"PATCH", obj + "?dry_run=1", `{"custom_id": "changed"}`},
		{"DELETE", obj + "?x=1", ""},
		{"POST", orgPath + "?x=1", `{"name": "Hostile Org 2"}`},
		{"POST", orgPath + "list/?x=1", `[{"name": "Hostile Org 3"}]`},
	} {
		r := e.rawRequest(rq.method, rq.target, httpWithHeaders(c.headers, map[string]string{"Content-Type": "application/json"}), rq.body)
		if r.status != http.StatusBadRequest {
			t.Errorf("%s %s: status %d, want 400", rq.method, strings.TrimPrefix(rq.target, obj), r.status)
		}
	}
	// A query with no parameter is no query, as on lists.
	for _, target := range []string{obj + "?", obj + "?&", obj + "?&&"} {
		if r := e.rawRequest("GET", target, c.headers, ""); r.status != http.StatusOK {
			t.Errorf("GET %s: status %d, want 200", strings.TrimPrefix(target, obj), r.status)
		}
	}
	got := c.do("GET", obj, nil)
	if got.status != http.StatusOK || got.obj["custom_id"] != nil {
		t.Errorf("after refused writes: status %d, custom_id %v", got.status, got.obj["custom_id"])
	}
	if n := c.count(orgPath); n != 1 {
		t.Errorf("%d organizations after refused creates, want 1", n)
	}
}

// A body that encoding/json would accept by repairing or dropping part of
// it is a 400, and nothing is stored.
func TestHostileJSONBodies(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Hostile Body AB")
	f := c.fixtures()
	tenantRef := `{"id": "` + f.tenant["id"].(string) + `"}`
	pi := func(firstName string) string {
		return `{"tenant": ` + tenantRef + `, "first_name": ` + firstName + `}`
	}
	bodies := []struct {
		name, body string
		status     int
		key        string // the error key, or "" for the parse error body
	}{
		{"invalid UTF-8", pi("\"\xff\xfeX\""), 400, ""},
		{"overlong encoding", pi("\"\xc0\xaf\""), 400, ""},
		{"encoded surrogate", pi("\"\xed\xa0\x80\""), 400, ""},
		{"lone high surrogate", pi(`"\ud800"`), 400, ""},
		{"lone low surrogate", pi(`"\udc00x"`), 400, ""},
		{"high surrogate without its low half", pi(`"\ud800\u0041"`), 400, ""},
		{"duplicate key", `{"tenant": ` + tenantRef + `, "first_name": "A", "first_name": "B"}`, 400, ""},
		{"duplicate key by escape", `{"tenant": ` + tenantRef + `, "first_name": "A", "first\u005fname": "B"}`, 400, ""},
		{"duplicate key in a reference", `{"tenant": {"id": "` + f.tenant["id"].(string) + `", "id": "` + f.tenant["id"].(string) + `"}}`, 400, ""},
		{"byte order mark", "\xef\xbb\xbf" + pi(`"A"`), 400, ""},
		{"trailing data", pi(`"A"`) + `{}`, 400, ""},
		{"reference with another key", `{"tenant": {"id": "` + f.tenant["id"].(string) + `", "name": "x"}}`, 400, "tenant"},
		{"reference keyed ID", `{"tenant": {"ID": "` + f.tenant["id"].(string) + `"}}`, 400, "tenant"},
		{"reference id not a string", `{"tenant": {"id": 1}}`, 400, "tenant"},
		{"reference id null", `{"tenant": {"id": null}}`, 400, "tenant"},
	}
	for _, b := range bodies {
		r := c.do("POST", piPath, b.body)
		if r.status != b.status {
			t.Errorf("%s: status %d, want %d", b.name, r.status, b.status)
			continue
		}
		switch {
		case b.key == "" && (r.obj["detail"] == nil || len(r.obj) != 1):
			t.Errorf("%s: keys %v, want the JSON parse error body", b.name, keys(r.obj))
		case b.key != "" && r.obj[b.key] == nil:
			t.Errorf("%s: keys %v, want an error on %s", b.name, keys(r.obj), b.key)
		}
	}
	for _, b := range bodies[:4] {
		if r := c.do("POST", piPath+"list/", "["+b.body+"]"); r.status != http.StatusBadRequest {
			t.Errorf("bulk with %s: status %d, want 400", b.name, r.status)
		}
	}
	for name, ct := range map[string]map[string]string{
		"latin-1":     {"Content-Type": "application/json; charset=iso-8859-1"},
		"gzip":        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
		"identity":    {"Content-Type": "application/json", "Content-Encoding": "identity"},
		"text/plain":  {"Content-Type": "text/plain"},
		"no type":     {},
		"json in csv": {"Content-Type": "text/csv"},
		// dialRaw writes each value after its name: these are two fields.
		"json, then text": {"Content-Type": "application/json\r\nContent-Type: text/plain"},
		"json twice":      {"Content-Type": "application/json\r\nContent-Type: application/json"},
	} {
		r := e.rawRequest("POST", piPath, httpWithHeaders(c.headers, ct), pi(`"A"`))
		if r.status != http.StatusUnsupportedMediaType {
			t.Errorf("%s: status %d, want 415", name, r.status)
		}
	}
	if n := c.count(piPath); n != 0 {
		t.Fatalf("%d protected identities stored by refused bodies, want 0", n)
	}
	// What is exact passes: a surrogate pair, UTF-8 as declared.
	r := e.rawRequest("POST", piPath, httpWithHeaders(c.headers, map[string]string{"Content-Type": "application/json; charset=UTF-8"}),
		pi(`"Emoji \ud83d\ude00"`))
	if r.status != http.StatusCreated || r.obj["first_name"] != "Emoji \U0001F600" {
		t.Errorf("a valid surrogate pair: status %d", r.status)
	}
}

// A body that stops arriving is out of time, not malformed: when the
// server's read timeout ends it, the answer is the time limit's 503 with
// Retry-After, counted as a request_timeout.
func TestHostileStalledBody(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Stalled Body AB")
	srv := httptest.NewUnstartedServer(e.server.Config.Handler)
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Start()
	defer srv.Close()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(srv.URL, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	var b strings.Builder
	b.WriteString("POST " + orgPath + " HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 100\r\n")
	for k, v := range c.headers {
		b.WriteString(k + ": " + v + "\r\n")
	}
	b.WriteString("\r\n" + `{"name": "Stall`)
	if _, err := conn.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	retryAfter(t, "a stalled body", e.readResponse(resp), http.StatusServiceUnavailable, 1)
	if !strings.Contains(suiteLog.String(), `"reason":"request_timeout"`) {
		t.Error("no security event for the stalled body")
	}
	if n := c.count(orgPath); n != 0 {
		t.Errorf("%d organizations written from a stalled body, want 0", n)
	}
}

// A request refused before its body is read is answered at once, though
// the body has not arrived (sent slowly, or never), and the answer ends
// its connection: Go would otherwise read the rest of the body before
// answering, and hold back a refusal until the read timeout.
func TestHostileRefusalBeforeTheBody(t *testing.T) {
	e := newEnv(t)
	a := e.newCustomer("Refused Body AB")
	reader := e.newClient(a.customerID, "read")
	json := map[string]string{"Content-Type": "application/json", "Content-Length": "100"}
	text := httpWithHeaders(a.headers, map[string]string{"Content-Type": "text/plain", "Content-Length": "100"})
	for _, c := range []struct {
		name         string
		method, path string
		headers      map[string]string
		status       int
	}{
		{"no credentials", "POST", orgPath, json, http.StatusUnauthorized},
		{"a read client writing", "POST", orgPath, httpWithHeaders(reader.headers, json), http.StatusForbidden},
		{"not JSON", "POST", orgPath, text, http.StatusUnsupportedMediaType},
		// The 404 of an update of no object, found once the body's type
		// was refused, leaves the body unread too.
		{"not JSON to no object", "PATCH", orgPath + "5b0e9c1d-3f7a-4d2e-8c6b-9a1f0e2d3c4b/", text, http.StatusNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn := e.dialRaw(c.method, c.path, c.headers, `{"name": `)
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer before the body arrived: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.status || !resp.Close {
				t.Errorf("status %d, Connection: close %v; want %d, and the connection ended", resp.StatusCode, resp.Close, c.status)
			}
		})
	}
}

// A request whose framing a proxy in front could read differently from Go
// ends its connection once answered, so that no bytes after what Go took
// for its body are ever read as another request (request smuggling):
// HTTP/1.0 with Transfer-Encoding (Go ignores the header, as RFC 9112
// §6.1 has it, but must then close), and Content-Length beside
// Transfer-Encoding: chunked (Go drops the length; §6.3: close). A plain
// request keeps its connection, and the request after it is answered.
func TestHostileAmbiguousFraming(t *testing.T) {
	e := newEnv(t)
	a := e.newCustomer("Framing AB")
	var head strings.Builder
	for k, v := range httpWithHeaders(a.headers, map[string]string{"Content-Type": "application/json"}) {
		head.WriteString(k + ": " + v + "\r\n")
	}
	const body = `{"name": "Framed Org"}`
	chunked := strconv.FormatInt(int64(len(body)), 16) + "\r\n" + body + "\r\n0\r\n\r\n"
	const next = "GET /healthz HTTP/1.1\r\nHost: test\r\nX-Request-ID: the-next-request\r\n\r\n"
	for _, c := range []struct {
		name, request string
		answersNext   bool
	}{
		{"HTTP/1.0 with Transfer-Encoding", "POST " + orgPath + " HTTP/1.0\r\nHost: test\r\nConnection: keep-alive\r\n" +
			head.String() + "Transfer-Encoding: chunked\r\n\r\n", false},
		{"Content-Length and Transfer-Encoding", "POST " + orgPath + " HTTP/1.1\r\nHost: test\r\n" + head.String() +
			"Content-Length: " + strconv.Itoa(len(chunked)) + "\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked, false},
		{"chunked", "POST " + orgPath + " HTTP/1.1\r\nHost: test\r\n" + head.String() +
			"Transfer-Encoding: chunked\r\n\r\n" + chunked, false},
		{"Content-Length alone", "POST " + orgPath + " HTTP/1.1\r\nHost: test\r\n" + head.String() +
			"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.DialTimeout("tcp", strings.TrimPrefix(e.server.URL, "http://"), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := conn.Write([]byte(c.request + next)); err != nil {
				t.Fatal(err)
			}
			rd := bufio.NewReader(conn)
			first, err := http.ReadResponse(rd, nil)
			if err != nil {
				t.Fatalf("reading the first answer: %v", err)
			}
			first.Body.Close()
			second, err := http.ReadResponse(rd, nil)
			switch {
			case c.answersNext && err != nil:
				t.Fatalf("the request after a plain one was not answered: %v", err)
			case c.answersNext && second.Header.Get("X-Request-ID") != "the-next-request":
				t.Errorf("the answer after a plain request is not the next request's")
			case !c.answersNext && err == nil:
				t.Errorf("the bytes after the request were answered as a request (status %d): the connection stayed open", second.StatusCode)
			}
		})
	}
}

// A body cut short by its connection (a client that went away, or closed
// only its side) is a 400 but no security event: nothing arrived that did
// not decode. The same bytes as a whole body are one.
func TestBodyCutShortIsNoSecurityEvent(t *testing.T) {
	e := newEnv(t)
	a := e.newCustomer("Cut Short AB")
	const undecodable = `accounts_security_events_total{reason="undecodable_body"}`
	const part = `{"name": "Cut`
	before := e.metricValue(undecodable)

	h := httpWithHeaders(a.headers, map[string]string{"Content-Type": "application/json", "Content-Length": "100", "Connection": "close"})
	conn := e.dialRaw("POST", orgPath, h, part)
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	if r := e.readResponse(resp); r.status != http.StatusBadRequest {
		t.Errorf("a body cut short: status %d, want 400", r.status)
	}
	if got := e.metricValue(undecodable); got != before {
		t.Errorf("a body cut short counted as undecodable: %v, want %v", got, before)
	}

	if r := e.rawRequest("POST", orgPath, httpWithHeaders(a.headers, map[string]string{"Content-Type": "application/json"}), part); r.status != http.StatusBadRequest {
		t.Errorf("a whole body that does not decode: status %d, want 400", r.status)
	}
	if got := e.metricValue(undecodable); got != before+1 {
		t.Errorf("a whole body that does not decode: %v undecodable, want %v", got, before+1)
	}
}

// holdAuditTrail opens a transaction behind the service's back in which
// every append to the audit trail waits, until it is rolled back.
func holdAuditTrail(t *testing.T, e *env) *sql.Tx {
	t.Helper()
	lock, err := e.rawDB().db.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	hold := "CREATE TABLE audit_hold (x INTEGER)"
	if onPostgres() {
		hold = "LOCK TABLE audit_entries IN SHARE MODE"
	}
	if _, err := lock.Exec(hold); err != nil {
		lock.Rollback()
		t.Fatal(err)
	}
	return lock
}

// While reads' audit entries can't be written (the audit trail locked
// elsewhere: every audited read waits, then is refused), /readyz answers
// 503 once a batch of them has been committing for store.WriteStall, as it
// does for a stalled write, and 200 again once they commit. (On PostgreSQL
// they commit apart from the writes, and /readyz stayed 200.)
func TestReadinessSeesReadsStall(t *testing.T) {
	e := newEnv(t)
	a := e.newCustomer("Stalled Reads AB")
	tn := a.create(tenantPath, map[string]any{"last_name": personal("Väntesson")})
	lock := holdAuditTrail(t, e)
	defer lock.Rollback()
	read := make(chan error, 1)
	go func() {
		_, err := e.sendWith(context.Background(), "GET", tenantPath+tn["id"].(string)+"/", a.headers)
		read <- err
	}()
	keysEventually(t, e.server.URL, http.StatusServiceUnavailable, "while reads' audit entries can't be written")
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-read; err != nil {
		t.Errorf("the read that waited: %v", err)
	}
	keysEventually(t, e.server.URL, http.StatusOK, "once reads' audit entries are written again")
}

// A request whose client goes away while its work waits (here an audited
// read, its entry queued behind a write lock held from outside) is no
// failure of the service's: its work ends with the client's context, and
// the request is logged and counted as aborted (status 499, nginx's "client
// closed request"), never as a 500 with an error line, which would let any
// client raise the error rate and the error log at will.
func TestClientGoneIsNoServerError(t *testing.T) {
	e := newEnv(t)
	a := e.newCustomer("Gone Client AB")
	tn := a.create(tenantPath, map[string]any{"last_name": personal("Borttagsson")})
	pi := a.create(piPath, map[string]any{"tenant": ref(tn), "first_name": personal("Borttagina")})
	path := piPath + pi["id"].(string) + "/"

	lock := holdAuditTrail(t, e)
	defer lock.Rollback()

	// The first read leads its batch and waits for the lock; the second
	// waits for that batch, until its client gives up.
	first := make(chan int, 1)
	go func() {
		r, err := e.sendWith(context.Background(), "GET", path, a.headers)
		if err != nil {
			first <- 0
			return
		}
		first <- r
	}()
	time.Sleep(300 * time.Millisecond)
	const goneID = "4f0c2a43-7a1d-4a53-9c55-7d3b0d2f0b61"
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := e.sendWith(ctx, "GET", path, httpWithHeaders(a.headers, map[string]string{"X-Request-ID": goneID})); err == nil {
		t.Fatal("the read answered while the audit trail was locked")
	}
	// The server learns that its client went away as the connection ends.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(suiteLog.String(), goneID) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	if status := <-first; status != http.StatusOK {
		t.Errorf("the read that waited for the lock: status %d, want 200", status)
	}

	var line map[string]any
	for _, l := range strings.Split(suiteLog.String(), "\n") {
		if !strings.Contains(l, goneID) {
			continue
		}
		var entry map[string]any
		if err := json.Unmarshal([]byte(l), &entry); err != nil {
			t.Fatal(err)
		}
		if entry["level"] == "ERROR" {
			t.Errorf("the client's going away was logged as an error: %v", entry["msg"])
		}
		if entry["msg"] == "request aborted" {
			line = entry
		}
	}
	if line == nil {
		t.Fatal("no request line says the request was aborted")
	}
	if line["status"] != float64(statusClientClosed) || line["outcome"] != "aborted" {
		t.Errorf("request line status %v outcome %v, want %d and aborted", line["status"], line["outcome"], statusClientClosed)
	}
	if n := e.metricSum(`accounts_http_requests_total{`, `status="500"`); n != 0 {
		t.Errorf("%v requests counted as 500", n)
	}
	if n := e.metricSum(`accounts_http_requests_total{`, fmt.Sprintf(`status="%d"`, statusClientClosed)); n != 1 {
		t.Errorf("%v requests counted as %d, want 1", n, statusClientClosed)
	}
}

// statusClientClosed is the status the service logs and counts for a
// request cut because its client went away.
const statusClientClosed = 499

// sendWith sends a request without a body under ctx and returns its status,
// or the error of a request that got no answer.
func (e *env) sendWith(ctx context.Context, method, path string, headers map[string]string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, e.server.URL+path, nil)
	if err != nil {
		return 0, err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// metricSum adds up the samples of /metrics whose line starts with prefix
// and holds label.
func (e *env) metricSum(prefix, label string) float64 {
	e.t.Helper()
	r := e.send("GET", "/metrics", nil, nil, "")
	var sum float64
	for _, line := range strings.Split(string(r.raw), "\n") {
		if !strings.HasPrefix(line, prefix) || !strings.Contains(line, label) {
			continue
		}
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			v, _ := strconv.ParseFloat(line[i+1:], 64)
			sum += v
		}
	}
	return sum
}

// A list its client does not take holds no read transaction: it is read
// whole (under the read-ahead bound) before anything goes out, so a slow
// or stalled reader can't keep SQLite's WAL from being checkpointed and
// restarted (it would grow with every write meanwhile), nor a PostgreSQL
// snapshot open. The server here has a 64 KiB send buffer and the client
// a 16 KiB receive buffer, so that a list of 1,500 (some 370 KB) written
// as it was read would stall inside its transaction.
func TestStalledListHoldsNoReadTransaction(t *testing.T) {
	e := newEnv(t)
	a := e.newCustomer("Stalled List AB")
	a.seedOrganizations("Stalled Org", 1500)
	slow := e.smallBufferServer()
	conn, err := net.Dial("tcp", strings.TrimPrefix(slow.server.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(16 << 10)
	var head strings.Builder
	head.WriteString("GET " + orgPath + " HTTP/1.1\r\nHost: test\r\n")
	for k, v := range a.headers {
		head.WriteString(k + ": " + v + "\r\n")
	}
	if _, err := conn.Write([]byte(head.String() + "\r\n")); err != nil {
		t.Fatal(err)
	}
	// The list of 1,500 is read in well under this; its answer then waits
	// for a client that does not read.
	time.Sleep(time.Second)
	a.create(orgPath, map[string]any{"name": "Written Meanwhile"})

	raw := e.rawDB()
	if onPostgres() {
		open := raw.count(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()`)
		if open != 0 {
			t.Errorf("%d transactions held open while the list waits for its client", open)
		}
	} else {
		c, err := raw.db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.ExecContext(context.Background(), "PRAGMA busy_timeout = 0"); err != nil {
			t.Fatal(err)
		}
		var busy, frames, copied int
		if err := c.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &frames, &copied); err != nil {
			t.Fatal(err)
		}
		if busy != 0 {
			t.Errorf("the WAL can't be checkpointed and restarted while the list waits for its client (%d of %d frames copied)", copied, frames)
		}
	}

	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the list: %v", err)
	}
	var objs []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&objs); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the list: status %d, %v", resp.StatusCode, err)
	}
	if len(objs) != 1500 {
		t.Errorf("the list has %d organizations, want the 1,500 there were when it was read", len(objs))
	}
}

// smallBufferServer returns e with a server of its own on e's service,
// whose connections have 64 KiB send buffers: an answer larger than that
// waits for its client.
func (e *env) smallBufferServer() *env {
	e.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(e.app.Handler)
	srv.Listener.Close()
	srv.Listener = smallSendBuffers{ln}
	srv.Start()
	e.t.Cleanup(srv.Close)
	s := *e
	s.server = srv
	return &s
}

// smallSendBuffers gives every accepted connection a 64 KiB send buffer.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		c.(*net.TCPConn).SetWriteBuffer(64 << 10)
	}
	return c, err
}
