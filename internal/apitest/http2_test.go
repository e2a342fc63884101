package apitest

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// h2Server serves e's service over TLS, where clients speak HTTP/2 (as
// serve does with --tls-cert), and counts the connections it accepts.
type h2Server struct {
	t     *testing.T
	srv   *httptest.Server
	conns atomic.Int64
}

func (e *env) h2Server(t *testing.T) *h2Server {
	s := &h2Server{t: t, srv: httptest.NewUnstartedServer(e.app.Handler)}
	s.srv.EnableHTTP2 = true
	s.srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	return s
}

// do sends a request over HTTP/2 under ctx and returns the answer, or the
// error of a request that got none.
func (s *h2Server) do(ctx context.Context, method, path string, body io.Reader, headers map[string]string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.srv.URL+path, body)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	if resp.ProtoMajor != 2 {
		s.t.Fatalf("%s %s was answered over HTTP/%d.%d, want HTTP/2", method, pathLabel(path), resp.ProtoMajor, resp.ProtoMinor)
	}
	return resp, data, nil
}

// status sends a request that must be answered and returns its status.
func (s *h2Server) status(method, path, body string, headers map[string]string) int {
	s.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	resp, _, err := s.do(context.Background(), method, path, rd, headers)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, pathLabel(path), err)
	}
	return resp.StatusCode
}

// Over HTTP/2 a request refused before its body is read ends its own
// stream only. "Connection: close", which ends an HTTP/1.1 connection for
// that (TestHostileRefusalBeforeTheBody), would end every other stream of
// the connection (a GOAWAY): one caller's 401 or 429 would cut the requests
// of all others sharing it (a proxy's), and make a client reconnect per
// refusal.
func TestHTTP2RefusalKeepsTheConnection(t *testing.T) {
	e := newEnv(t)
	a := e.newCustomer("Two Streams AB")
	reader := e.newClient(a.customerID, "read")
	h2 := e.h2Server(t)
	const body = `{"name": "Streamed Org"}`
	json := map[string]string{"Content-Type": "application/json"}
	for _, c := range []struct {
		name    string
		headers map[string]string
		status  int
	}{
		{"no credentials", json, http.StatusUnauthorized},
		{"a read client writing", httpWithHeaders(reader.headers, json), http.StatusForbidden},
		{"not JSON", httpWithHeaders(a.headers, map[string]string{"Content-Type": "text/plain"}), http.StatusUnsupportedMediaType},
	} {
		if got := h2.status("POST", orgPath, body, c.headers); got != c.status {
			t.Errorf("%s: status %d, want %d", c.name, got, c.status)
		}
		for range 2 {
			if got := h2.status("GET", "/healthz", "", nil); got != http.StatusOK {
				t.Fatalf("/healthz after %s: status %d", c.name, got)
			}
		}
	}
	if got := h2.status("POST", orgPath, body, httpWithHeaders(a.headers, json)); got != http.StatusCreated {
		t.Errorf("a create after the refusals: status %d, want 201", got)
	}
	if n := h2.conns.Load(); n != 1 {
		t.Errorf("the requests took %d connections, want 1: a refusal ended its connection", n)
	}
}

// Over HTTP/2, as over HTTP/1.1, the spaces around a header value are not
// part of it (README): Go's HTTP/1 server takes them off, its HTTP/2 server
// passes them on, and the service takes them off itself.
func TestHTTP2HeaderSpacesAreNotPartOfTheValue(t *testing.T) {
	e := newEnv(t)
	a := e.newCustomer("Spaced Headers AB")
	h2 := e.h2Server(t)
	padded := map[string]string{}
	for k, v := range a.headers {
		padded[k] = " " + v + "\t"
	}
	const id = "0b0e8a52-3f7e-4d0c-9a55-5b8f0f0c6a11"
	padded["X-Request-ID"] = " " + id + " "
	resp, _, err := h2.do(context.Background(), "GET", orgPath+"list/", nil, padded)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the seven headers with spaces around them: status %d, want 200", resp.StatusCode)
	}
	if got := resp.Header.Get("X-Request-ID"); got != id {
		t.Errorf("X-Request-ID with spaces around it: answered %q, want the id", got)
	}
}

// A body whose HTTP/2 stream its client resets half-way is a body cut
// short (TestBodyCutShortIsNoSecurityEvent): no security event, as a client
// that goes away is none. The same bytes as a whole body are one.
func TestHTTP2StreamResetIsNoSecurityEvent(t *testing.T) {
	e := newEnv(t)
	a := e.newCustomer("Reset Stream AB")
	h2 := e.h2Server(t)
	const undecodable = `accounts_security_events_total{reason="undecodable_body"}`
	const part = `{"name": "Cut`
	before := e.metricValue(undecodable)

	const resetID = "6a1f3c2e-9b4d-4e8a-8c1f-2d3e4f5a6b7c"
	body, send := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := h2.do(ctx, "POST", orgPath, body,
			httpWithHeaders(a.headers, map[string]string{"Content-Type": "application/json", "X-Request-ID": resetID}))
		done <- err
	}()
	if _, err := send.Write([]byte(part)); err != nil {
		t.Fatal(err)
	}
	// The server is reading the body once the first part has gone
	// through the pipe; the reset comes while it waits for the rest.
	time.Sleep(200 * time.Millisecond)
	cancel()
	if err := <-done; err == nil {
		t.Fatal("a request whose stream was reset got an answer")
	}
	send.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(suiteLog.String(), resetID) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(suiteLog.String(), resetID) {
		t.Fatal("the reset request was never logged")
	}
	if got := e.metricValue(undecodable); got != before {
		t.Errorf("a stream reset half-way counted as undecodable: %v, want %v", got, before)
	}

	if got := h2.status("POST", orgPath, part, httpWithHeaders(a.headers, map[string]string{"Content-Type": "application/json"})); got != http.StatusBadRequest {
		t.Errorf("a whole body that does not decode: status %d, want 400", got)
	}
	if got := e.metricValue(undecodable); got != before+1 {
		t.Errorf("a whole body that does not decode: %v undecodable, want %v", got, before+1)
	}
}
