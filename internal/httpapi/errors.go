package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"accounts/internal/apperr"
	"accounts/internal/store"
)

// Fixed bodies of the contract's section 7.
var (
	bodyUnauthenticated = map[string]string{"detail": "Invalid or missing credentials."}
	bodyForbidden       = map[string]string{"detail": "You do not have permission to perform this action."}
	bodyNotFound        = map[string]string{"detail": "Not found."}
	bodyParseError      = map[string]string{"detail": "JSON parse error."}
	bodyTooLarge        = map[string]string{"detail": "Request body too large."}
	bodyUnsupported     = map[string]string{"detail": "Unsupported media type."}
	bodyThrottled       = map[string]string{"detail": "Request was throttled."}
	bodyOverloaded      = map[string]string{"detail": "Service temporarily unavailable, try again later."}
)

// reasonRequestTimeout is the refusal reason of a request whose work ran
// past its time limit.
const reasonRequestTimeout = "request_timeout"

// refusedUnread are the kinds of error answered before the request's body
// is read. Go's server, before it writes such an answer, reads what is left
// of the body (up to 256 KiB) to keep the connection: a client that sends
// its body slowly, or not at all, would hold back its own 401 or 429 until
// the read timeout, and make the process read for a caller it refused. An
// answer that ends the connection is sent at once, and Go reads nothing.
// Over HTTP/2 only the stream needs to end, and Go ends it by itself (it
// resets a stream whose body is left unread, reading none of it), where
// "Connection: close" would end the connection and every other stream on
// it (a GOAWAY).
var refusedUnread = map[apperr.Kind]bool{
	apperr.Unauthenticated:  true,
	apperr.Forbidden:        true,
	apperr.Throttled:        true,
	apperr.Overloaded:       true,
	apperr.UnsupportedMedia: true,
}

// closeUnread ends an HTTP/1 request's connection with its answer when
// an error of kind left its body unread (see refusedUnread).
func closeUnread(w http.ResponseWriter, r *http.Request, kind apperr.Kind) {
	if refusedUnread[kind] && r.ContentLength != 0 && r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
	}
}

// writeError is the one place where an error becomes a status and a body.
// Internal errors are logged with the request id and never shown; every
// other kind has a fixed body, or the field errors for Invalid.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	// Past its time limit a request is refused (send it again later),
	// unless it is a write whose COMMIT went out and then failed: that
	// may have taken effect, and stays the 500 that says so in the log.
	if timedOut(r.Context()) && !store.IsOutcomeUnknown(err) {
		err = apperr.Refused(apperr.Overloaded, reasonRequestTimeout, time.Second)
	}
	kind := apperr.KindOf(err)
	closeUnread(w, r, kind)
	switch kind {
	case apperr.Invalid:
		if items := apperr.ItemsOf(err); items != nil {
			writeJSON(w, http.StatusBadRequest, items)
			return
		}
		writeJSON(w, http.StatusBadRequest, apperr.FieldsOf(err))
	case apperr.NotFound:
		writeJSON(w, http.StatusNotFound, bodyNotFound)
	case apperr.Unauthenticated:
		writeJSON(w, http.StatusUnauthorized, bodyUnauthenticated)
	case apperr.Forbidden:
		writeJSON(w, http.StatusForbidden, bodyForbidden)
	case apperr.Malformed:
		if !errors.Is(err, errBodyCutShort) {
			s.securityEvent(r, "undecodable_body")
		}
		writeJSON(w, http.StatusBadRequest, bodyParseError)
	case apperr.TooLarge:
		writeJSON(w, http.StatusRequestEntityTooLarge, bodyTooLarge)
	case apperr.UnsupportedMedia:
		writeJSON(w, http.StatusUnsupportedMediaType, bodyUnsupported)
	case apperr.Throttled:
		s.refuse(w, r, err, http.StatusTooManyRequests, bodyThrottled)
	case apperr.Overloaded:
		s.refuse(w, r, err, http.StatusServiceUnavailable, bodyOverloaded)
	default:
		if clientGone(r) {
			// The client went away (it closed its connection, or reset
			// its stream) and the work failed for that reason: no
			// failure of the service's to log, and no one to answer.
			// Cut the response, as a stream that fails half-way is:
			// the request is logged and counted as aborted.
			info(r.Context()).aborted = true
			panic(http.ErrAbortHandler)
		}
		if store.Unavailable(err) {
			s.databaseUnavailable(w, r, err)
			return
		}
		s.internalError(w, r, err)
	}
}

// clientGone reports whether the request's client went away before its
// answer: its context ended, and not by the request's time limit.
func clientGone(r *http.Request) bool {
	return r.Context().Err() != nil && !timedOut(r.Context())
}

// databaseUnavailable answers a request that failed because the database
// could not be reached, or lost its connection before the request
// committed anything (store.Unavailable): 503 with Retry-After and the
// overload body, so that a client sends it again later, where a 500 would
// say the service failed. The error is logged as a 500's is; /readyz
// answers 503 meanwhile.
func (s *Server) databaseUnavailable(w http.ResponseWriter, r *http.Request, err error) {
	s.log.ErrorContext(r.Context(), "request failed: database unavailable", "request_id", requestID(r.Context()), "error", err.Error())
	w.Header().Set("Retry-After", strconv.Itoa(int(databaseRetry/time.Second)))
	writeJSON(w, http.StatusServiceUnavailable, bodyOverloaded)
}

// databaseRetry is the Retry-After of a request the database's absence
// failed: long enough for a restart or a failover to be noticed, short
// enough not to idle a client once it is over.
const databaseRetry = 2 * time.Second

// refuse answers a request that a limit refused, with Retry-After in whole
// seconds (at least one), and records it as a security event.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, err error, status int, body map[string]string) {
	reason, after := apperr.RefusalOf(err)
	secs := int64((after + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
	s.securityEvent(r, reason)
	writeJSON(w, status, body)
}

// internalError logs err (which never holds a personal value: errors name
// rules, columns and kinds) and answers the contract's 500 body.
func (s *Server) internalError(w http.ResponseWriter, r *http.Request, err error) {
	id := requestID(r.Context())
	attrs := []any{"request_id", id, "error", err.Error()}
	if store.IsOutcomeUnknown(err) {
		// A COMMIT that failed after it may have taken effect: the
		// operator reading the line can tell it from a failure of ours.
		attrs = append(attrs, "outcome", "unknown")
	}
	s.log.ErrorContext(r.Context(), "request failed", attrs...)
	writeJSON(w, http.StatusInternalServerError, internalErrorBody(id))
}

// internalErrorBody is the 500 body of the request with that id.
func internalErrorBody(id string) map[string]string {
	return map[string]string{"detail": "Internal server error.", "request_id": id}
}
