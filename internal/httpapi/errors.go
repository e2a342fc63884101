package httpapi

import (
	"net/http"

	"accounts/internal/apperr"
)

// Fixed bodies of the contract's section 7.
var (
	bodyUnauthenticated = map[string]string{"detail": "Invalid or missing credentials."}
	bodyForbidden       = map[string]string{"detail": "You do not have permission to perform this action."}
	bodyNotFound        = map[string]string{"detail": "Not found."}
	bodyParseError      = map[string]string{"detail": "JSON parse error."}
	bodyTooLarge        = map[string]string{"detail": "Request body too large."}
	bodyUnsupported     = map[string]string{"detail": "Unsupported media type."}
)

// writeError is the one place where an error becomes a status and a body.
// Internal errors are logged with the request id and never shown; every
// other kind has a fixed body, or the field errors for Invalid.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	switch apperr.KindOf(err) {
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
	default:
		s.internalError(w, r, err)
	}
}

// internalError logs err (which never holds a personal value: errors name
// rules, columns and kinds) and answers the contract's 500 body.
func (s *Server) internalError(w http.ResponseWriter, r *http.Request, err error) {
	id := requestID(r.Context())
	s.log.ErrorContext(r.Context(), "request failed", "request_id", id, "error", err.Error())
	writeJSON(w, http.StatusInternalServerError, map[string]string{
		"detail":     "Internal server error.",
		"request_id": id,
	})
}
