package httpapi

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"accounts/internal/apperr"
	"accounts/internal/audit"
	"accounts/internal/auth"
	"accounts/internal/limit"

	"github.com/google/uuid"
)

// requestInfo is what the middleware learns about a request as it passes
// through, for the access log and the metrics. It never holds a personal
// value: no query string, no body.
type requestInfo struct {
	// id names the request in the log, the audit trail and a 500 body: the
	// caller's X-Request-ID when it is a UUID, else one generated here, so
	// that a caller can't make the log carry a value of its choosing.
	id string
	// echo is the X-Request-ID answered: the caller's when it is safe to
	// echo, else id.
	echo      string
	route     string
	principal auth.Principal
	// aborted is set when the response was cut on purpose: after it
	// began, or before it did because its client went away.
	aborted bool
	// deadline bounds the work of the request (see withDeadline).
	deadline *deadline
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

// statusWriter remembers the status code written, the bytes of body sent,
// and whether a write failed (the client went away, or a write deadline
// passed): such a response did not arrive whole.
type statusWriter struct {
	http.ResponseWriter
	status   int
	bytes    int64
	writeErr bool
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
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	if err != nil {
		w.writeErr = true
	}
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (flushing,
// write deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe is the outermost middleware: it assigns the request id, and when
// the request is done writes the access log line and the metrics. A
// response that did not arrive whole is logged and counted as aborted, with
// the bytes that went out, never as a success.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if r.ProtoMajor >= 2 {
			trimHeaderSpace(r.Header)
		}
		ri := &requestInfo{route: "unmatched"}
		incoming := ""
		if ids := r.Header.Values("X-Request-ID"); len(ids) == 1 {
			// Of two ids, which one a proxy in front logged is anyone's
			// guess: neither names the request.
			incoming = incomingRequestID(ids[0])
		}
		if isUUID(incoming) {
			ri.id = incoming
		} else {
			ri.id = newRequestID()
		}
		ri.echo = cmp.Or(incoming, ri.id)
		w.Header().Set("X-Request-ID", ri.echo)
		if ambiguousFraming(r) {
			w.Header().Set("Connection", "close")
		}
		sw := &statusWriter{ResponseWriter: w}
		// Deferred, so that a request whose connection is cut on purpose
		// (a stream that failed half-way) is still logged and counted.
		defer func() {
			switch {
			case sw.status != 0:
			case ri.aborted:
				// Cut before any answer: its client went away.
				sw.status = statusClientClosedRequest
			default:
				sw.status = http.StatusOK
			}
			elapsed := time.Since(start)
			aborted := ri.aborted || sw.writeErr
			s.metrics.observe(ri.route, sw.status, aborted, elapsed)
			// Typed attributes: a line per request, without boxing each
			// value as the key-value form does.
			level, msg, outcome := slog.LevelInfo, "request", "complete"
			if aborted {
				level, msg, outcome = slog.LevelWarn, "request aborted", "aborted"
			}
			s.log.LogAttrs(r.Context(), level, msg,
				slog.String("request_id", ri.id),
				slog.String("route", ri.route),
				slog.Int("status", sw.status),
				slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
				slog.Int64("bytes", roundedSize(sw.bytes)),
				slog.String("customer_id", ri.principal.CustomerID),
				slog.String("client_id", ri.principal.ClientID),
				slog.String("outcome", outcome))
		}()
		ctx := audit.WithRequestID(context.WithValue(r.Context(), ctxKey{}, ri), ri.id)
		next.ServeHTTP(sw, r.WithContext(ctx))
	})
}

// trimHeaderSpace takes the spaces and tabs around each header value off,
// as Go's HTTP/1 server does as it reads them (RFC 9110, 5.5) and its
// HTTP/2 server does not (RFC 9113, 8.2.1, calls such a field malformed,
// and Go passes it on): so a request means the same over either.
func trimHeaderSpace(h http.Header) {
	for _, values := range h {
		for i, v := range values {
			values[i] = strings.Trim(v, " \t")
		}
	}
}

// statusClientClosedRequest is the status that the request log and the
// metrics give a request cut before any answer because its client went
// away (nginx's 499). It is never sent: there is no one to send it to.
const statusClientClosedRequest = 499

// ambiguousFraming reports whether a request's body may end elsewhere for
// a proxy in front than for Go, which then must not read another request
// from its connection (request smuggling): an HTTP/1.0 request (Go ignores
// its Transfer-Encoding, and an HTTP/1.0 proxy may not) or a chunked one
// (Go drops a Content-Length beside Transfer-Encoding, and a proxy may
// have read that length instead). Go removes both headers before a
// handler sees them, so the answer to every such request ends its
// connection, as RFC 9112 (6.1, 6.3) requires of the ones it can't tell.
func ambiguousFraming(r *http.Request) bool {
	return r.ProtoMajor == 1 && (r.ProtoMinor == 0 || len(r.TransferEncoding) > 0)
}

// roundedSize is an answer's size as the request log gives it: rounded up
// to whole KiB. The exact size of one object's answer, which the log line
// and the audit entry tie to the object by the request id, would tell the
// total length of a person's values to whoever reads the logs.
func roundedSize(n int64) int64 {
	const kib = 1 << 10
	return (n + kib - 1) / kib * kib
}

// incomingRequestID accepts a client's X-Request-ID when it is short and
// made only of letters, digits and -_.: so it is safe to echo.
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

// isUUID reports whether v is a UUID in its 36-character form: an id that
// can carry nothing but randomness, so it may be logged as it is.
func isUUID(v string) bool {
	if len(v) != 36 {
		return false
	}
	_, err := uuid.Parse(v)
	return err == nil
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

// guard admits and authenticates a request for a route of the given
// access, in the order that costs an abuser most and the service least:
// the process's in-flight cap (503), the failed-authentication throttles
// of the source address and the claimed client (429), the seven headers
// (401, one body for every failure), the client's request rate (429), the
// scope (403 for a read client that writes), and the customer's share of
// the requests in flight (429). Every refusal is a security event.
func (s *Server) guard(a access, next http.HandlerFunc) http.Handler {
	if a == public {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// An answer to a client holds personal data, or says something of
		// it: no cache may keep it. The credentials travel in headers of
		// their own, not Authorization, so a shared cache (a proxy in
		// front) has no other reason not to.
		w.Header().Set("Cache-Control", "no-store")
		release, err := s.limits.Enter()
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		defer release()
		// The time limit covers authentication too: a client not read
		// in the last auth.ClientCacheTTL is read from the database,
		// which may have gone silent.
		ctx, stop := s.withDeadline(r.Context())
		defer stop()
		r = r.WithContext(ctx)
		addr := sourceAddress(r)
		claimed := claimedClient(r.Header)
		if err := s.limits.AuthAllowed(addr, claimed); err != nil {
			s.writeError(w, r, err)
			return
		}
		p, err := s.auth.Authenticate(r.Context(), r.Header)
		if err != nil {
			if apperr.KindOf(err) == apperr.Unauthenticated {
				s.limits.AuthFailed(addr, claimed)
				s.securityEvent(r, "auth_failed")
			}
			s.writeError(w, r, err)
			return
		}
		info(r.Context()).principal = p
		// Permission before the client's rate, as Django REST Framework
		// checks them: a write a read client may not make is refused
		// whatever its rate, and spends none of it.
		if a == writer && !p.CanWrite() {
			s.securityEvent(r, "forbidden")
			s.writeError(w, r, apperr.New(apperr.Forbidden, nil))
			return
		}
		if err := s.limits.Client(p.ClientID); err != nil {
			s.writeError(w, r, err)
			return
		}
		leave, err := s.limits.Customer(p.CustomerID)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		defer leave()
		next(w, r)
	})
}

// sourceAddress is the request's peer address, without the port.
func sourceAddress(r *http.Request) string { return limit.SourceAddress(r.RemoteAddr) }

// claimedClient is the client id a request claims to be, when it is a
// UUID (anything else names no client, and is not worth a table entry).
func claimedClient(h http.Header) string {
	if v := h.Get(auth.HeaderClientEntity); isUUID(v) {
		return strings.ToLower(v)
	}
	return ""
}

// securityEvent logs and counts a request refused for a reason worth an
// operator's attention: a failed authentication, a refusal for scope, a
// throttle, input that does not decode. It names the reason, the route,
// the source address and the ids known (a claimed client id only when it
// is a UUID) — never a header value, a query string or a body.
//
// Repeats are folded (eventFolder): of one reason and one caller, one line
// a second, with the number folded since the last in "repeated".
func (s *Server) securityEvent(r *http.Request, reason string) {
	ri := info(r.Context())
	s.metrics.securityEvent(reason)
	source := sourceAddress(r)
	claimed := ""
	caller := source
	if ri.principal.ClientID != "" {
		caller = ri.principal.ClientID
	} else if claimed = claimedClient(r.Header); claimed != "" {
		caller = claimed
	}
	logIt, repeated := s.events.fold(foldKey{reason: reason, caller: caller}, time.Now())
	if !logIt {
		return
	}
	attrs := []any{
		"reason", reason,
		"request_id", ri.id,
		"route", ri.route,
		"source", source,
	}
	if ri.principal.ClientID != "" {
		attrs = append(attrs, "customer_id", ri.principal.CustomerID, "client_id", ri.principal.ClientID)
	} else if claimed != "" {
		attrs = append(attrs, "claimed_client_id", claimed)
	}
	if repeated > 0 {
		attrs = append(attrs, "repeated", repeated)
	}
	s.log.WarnContext(r.Context(), "security event", attrs...)
}
