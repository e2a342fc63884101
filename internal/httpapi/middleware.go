package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"

	"accounts/internal/apperr"
	"accounts/internal/audit"
	"accounts/internal/auth"
)

// requestInfo is what the middleware learns about a request as it passes
// through, for the access log and the metrics. It never holds a personal
// value: no query string, no body.
type requestInfo struct {
	id        string
	route     string
	principal auth.Principal
}

type ctxKey struct{}

func info(ctx context.Context) *requestInfo {
	if ri, ok := ctx.Value(ctxKey{}).(*requestInfo); ok {
		return ri
	}
	return &requestInfo{}
}

func requestID(ctx context.Context) string { return info(ctx).id }

func principal(ctx context.Context) auth.Principal { return info(ctx).principal }

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flushing).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe is the outermost middleware: it assigns the request id, and when
// the request is done writes the access log line and the metrics.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ri := &requestInfo{id: incomingRequestID(r.Header.Get("X-Request-ID")), route: "unmatched"}
		if ri.id == "" {
			ri.id = newRequestID()
		}
		w.Header().Set("X-Request-ID", ri.id)
		sw := &statusWriter{ResponseWriter: w}
		// Deferred, so that a request whose connection is cut on purpose
		// (a stream that failed half-way) is still logged and counted.
		defer func() {
			if sw.status == 0 {
				sw.status = http.StatusOK
			}
			elapsed := time.Since(start)
			s.metrics.observe(ri.route, sw.status, elapsed)
			s.log.InfoContext(r.Context(), "request",
				"request_id", ri.id,
				"route", ri.route,
				"status", sw.status,
				"duration_ms", float64(elapsed.Microseconds())/1000,
				"customer_id", ri.principal.CustomerID,
				"client_id", ri.principal.ClientID,
			)
		}()
		ctx := audit.WithRequestID(context.WithValue(r.Context(), ctxKey{}, ri), ri.id)
		next.ServeHTTP(sw, r.WithContext(ctx))
	})
}

// incomingRequestID accepts a client's X-Request-ID when it is short and
// made only of letters, digits and -_.: so it is safe to echo and log.
func incomingRequestID(v string) string {
	if len(v) == 0 || len(v) > 64 {
		return ""
	}
	for _, c := range []byte(v) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':'
		if !ok {
			return ""
		}
	}
	return v
}

func newRequestID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// named records the matched route pattern, the metrics' route label.
func (s *Server) named(pattern string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info(r.Context()).route = pattern
		next.ServeHTTP(w, r)
	})
}

// recoverPanics turns a panic into the contract's 500 body. It logs the
// stack and, for runtime errors only, the message: a panic value of our own
// could carry anything, so it is not printed.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			desc := fmt.Sprintf("panic of type %T", v)
			if re, ok := v.(runtime.Error); ok {
				desc = "runtime error: " + re.Error()
			}
			s.log.ErrorContext(r.Context(), "panic recovered", "request_id", requestID(r.Context()),
				"panic", desc, "stack", strconv.Quote(string(debug.Stack())))
			s.internalError(w, r, fmt.Errorf("httpapi: %s", desc))
		}()
		next.ServeHTTP(w, r)
	})
}

// guard authenticates a request for a route of the given access, answering
// 401 (one body for every failure) or 403 for a read client that writes.
func (s *Server) guard(a access, next http.HandlerFunc) http.Handler {
	if a == public {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.auth.Authenticate(r.Context(), r.Header)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		info(r.Context()).principal = p
		if a == writer && !p.CanWrite() {
			s.writeError(w, r, apperr.New(apperr.Forbidden, nil))
			return
		}
		next(w, r)
	})
}
