package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"accounts/internal/store"
)

// mwLockedBuffer is a log sink safe for concurrent writes.
type mwLockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *mwLockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *mwLockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// mwServer is the smallest Server that observe and recoverPanics need.
func mwServer() (*Server, *mwLockedBuffer) {
	buf := &mwLockedBuffer{}
	return &Server{
		log:     slog.New(slog.NewJSONHandler(buf, nil)),
		metrics: newMetrics(prometheus.NewRegistry(), nil),
	}, buf
}

// mwCount reads the requests counter of one route and status.
func mwCount(t *testing.T, s *Server, route, status string) float64 {
	t.Helper()
	c, err := s.metrics.requests.GetMetricWithLabelValues(route, status)
	if err != nil {
		t.Fatalf("requests metric: %v", err)
	}
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatalf("requests metric: %v", err)
	}
	return m.GetCounter().GetValue()
}

// mwCheck500 asserts the contract's 500 answer.
func mwCheck500(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", rec.Code)
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("500 body is not a JSON object: %v", err)
	}
	if len(body) != 2 || body["detail"] == nil || body["request_id"] == nil {
		t.Errorf("500 body has keys %v, want exactly detail and request_id", mwKeys(body))
	}
	hdr := rec.Header().Get("X-Request-ID")
	if id, _ := body["request_id"].(string); id == "" || id != hdr {
		t.Errorf("500 body request_id %q does not equal the X-Request-ID header %q", id, hdr)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("500 Content-Type %q, want application/json", ct)
	}
}

func mwKeys(m map[string]any) []string {
	out := []string{}
	for k := range m {
		out = append(out, k)
	}
	return out
}

const mwSecret = "Secret-Panic-Value"

// mwSecretError is an error value of our own that carries a personal value.
type mwSecretError struct{}

func (mwSecretError) Error() string { return "failed for " + mwSecret }

func TestRecoverPanicsOwnValues(t *testing.T) {
	values := map[string]any{
		"string":       mwSecret,
		"error":        errors.New("wrapped: " + mwSecret),
		"custom error": mwSecretError{},
		"struct":       struct{ Name string }{mwSecret},
	}
	for name, v := range values {
		t.Run(name, func(t *testing.T) {
			s, logBuf := mwServer()
			h := s.observe(s.recoverPanics(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				panic(v)
			})))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/accounts/users/customer/protectedidentity/", nil))
			mwCheck500(t, rec)
			if strings.Contains(rec.Body.String(), mwSecret) {
				t.Errorf("500 body contains the panic value")
			}
			logText := logBuf.String()
			if strings.Contains(logText, mwSecret) {
				t.Errorf("log contains the panic value")
			}
			if !strings.Contains(logText, "panic recovered") {
				t.Errorf("log lacks the panic recovered line")
			}
			if !strings.Contains(logText, rec.Header().Get("X-Request-ID")) {
				t.Errorf("log lacks the request id of the 500")
			}
			if got := mwCount(t, s, "unmatched", "500"); got != 1 {
				t.Errorf("requests metric for the 500: %v, want 1", got)
			}
		})
	}
}

const mwUUID = "6f1c2a4e-9b3d-4c1e-8a2f-0d5e7b9c1a3f"

// A caller's X-Request-ID is echoed, but the log, the audit trail and a
// 500 body name the request by it only when it is a UUID: otherwise a
// caller could make the log carry any value, a personal one included.
func TestRequestIDLoggedOnlyWhenUUID(t *testing.T) {
	for _, tc := range []struct {
		incoming string
		logged   bool
	}{{mwUUID, true}, {"Tolvan-Tolvansson", false}, {"req-123.abc", false}} {
		s, logBuf := mwServer()
		h := s.observe(s.recoverPanics(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.internalError(w, r, errors.New("failed"))
		})))
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/common/address/", nil)
		req.Header.Set("X-Request-ID", tc.incoming)
		h.ServeHTTP(rec, req)
		if got := rec.Header().Get("X-Request-ID"); got != tc.incoming {
			t.Errorf("incoming id #%d not echoed: got %q", len(tc.incoming), got)
		}
		var body map[string]any
		json.Unmarshal(rec.Body.Bytes(), &body)
		id, _ := body["request_id"].(string)
		if inLog := strings.Contains(logBuf.String(), tc.incoming); inLog != tc.logged {
			t.Errorf("incoming id %q in the log: %v, want %v", tc.incoming, inLog, tc.logged)
		}
		if (id == tc.incoming) != tc.logged {
			t.Errorf("500 body names the request %q for incoming %q", id, tc.incoming)
		}
		if id == "" || !strings.Contains(logBuf.String(), `"request_id":"`+id+`"`) {
			t.Errorf("500 body request_id %q is not the id in the log", id)
		}
	}
}

// A write whose COMMIT failed after it may have taken effect is a 500 like
// any other, but its log line says that its outcome is unknown, which a
// failure of the service's own does not.
func TestOutcomeUnknownIsLoggedSo(t *testing.T) {
	for _, tc := range []struct {
		err     error
		unknown bool
	}{
		{store.OutcomeUnknown(store.MarkUnavailable(errors.New("connection lost"))), true},
		{fmt.Errorf("records: %w", store.OutcomeUnknown(errors.New("flush failed"))), true},
		{errors.New("failed"), false},
	} {
		s, logBuf := mwServer()
		h := s.observe(s.recoverPanics(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.writeError(w, r, tc.err)
		})))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/common/address/", nil))
		mwCheck500(t, rec)
		if got := strings.Contains(logBuf.String(), `"outcome":"unknown"`); got != tc.unknown {
			t.Errorf("%q: the log says the outcome is unknown: %v, want %v", tc.err.Error(), got, tc.unknown)
		}
	}
}

// A request past its time limit is answered 503 with Retry-After (send it
// again), unless its write's outcome is unknown: that stays a 500, or the
// client would send again a write that may have taken effect.
func TestTimeLimitDoesNotHideAnUnknownOutcome(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
	}{
		{store.OutcomeUnknown(context.Canceled), http.StatusInternalServerError},
		{context.Canceled, http.StatusServiceUnavailable},
	} {
		s, _ := mwServer()
		s.events = newEventFolder()
		h := s.observe(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithCancelCause(r.Context())
			cancel(errRequestTimeout)
			s.writeError(w, r.WithContext(ctx), tc.err)
		}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/common/address/", nil))
		if rec.Code != tc.status {
			t.Errorf("%v past the time limit: status %d, want %d", tc.err, rec.Code, tc.status)
		}
		if retry := rec.Header().Get("Retry-After") != ""; retry != (tc.status == http.StatusServiceUnavailable) {
			t.Errorf("%v past the time limit: Retry-After %q", tc.err, rec.Header().Get("Retry-After"))
		}
	}
}

func TestRecoverPanicsRuntimeError(t *testing.T) {
	s, logBuf := mwServer()
	h := s.observe(s.recoverPanics(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]int
		//lint:ignore SA5000 the test needs a runtime error
		m[r.URL.Path]++
	})))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/common/address/", nil)
	req.Header.Set("X-Request-ID", mwUUID)
	h.ServeHTTP(rec, req)
	mwCheck500(t, rec)
	if rec.Header().Get("X-Request-ID") != mwUUID {
		t.Errorf("the incoming request id was not kept on the 500")
	}
	logText := logBuf.String()
	if !strings.Contains(logText, "panic recovered") {
		t.Errorf("log lacks the panic recovered line")
	}
	if !strings.Contains(logText, `"status":500`) {
		t.Errorf("access log lacks status 500")
	}

	// The server goes on answering after a panic.
	ok := s.observe(s.recoverPanics(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})))
	rec = httptest.NewRecorder()
	ok.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("after a panic: status %d, want 200", rec.Code)
	}
}

func TestRecoverPanicsThroughServer(t *testing.T) {
	// A panic in a routed handler is recovered by the same handler chain
	// New builds (observe, recoverPanics, dispatch), with the route named.
	buf := &mwLockedBuffer{}
	s := &Server{
		log:      slog.New(slog.NewJSONHandler(buf, nil)),
		metrics:  newMetrics(prometheus.NewRegistry(), nil),
		mux:      http.NewServeMux(),
		patterns: map[string]bool{},
	}
	s.mux.Handle("/boom/", s.named("GET /boom/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic(mwSecret)
	})))
	s.patterns["/boom/"] = true
	s.handler = s.observe(s.recoverPanics(http.HandlerFunc(s.dispatch)))
	srv := httptest.NewServer(s)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/boom/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("500 body is not JSON: %v", err)
	}
	if resp.StatusCode != http.StatusInternalServerError || len(body) != 2 || body["request_id"] != resp.Header.Get("X-Request-ID") {
		t.Errorf("status %d, keys %v: want the contract's 500", resp.StatusCode, mwKeys(body))
	}
	if strings.Contains(buf.String(), mwSecret) {
		t.Errorf("log contains the panic value")
	}
	if got := mwCount(t, s, "GET /boom/", "500"); got != 1 {
		t.Errorf("requests metric for the route's 500: %v, want 1", got)
	}
}

func TestRecoverPanicsAbortHandlerPropagates(t *testing.T) {
	s, _ := mwServer()
	h := s.observe(s.recoverPanics(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic(http.ErrAbortHandler)
	})))
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Errorf("recovered %v, want http.ErrAbortHandler to propagate", v)
		}
	}()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	t.Errorf("ServeHTTP returned; want the abort panic to propagate")
}
