package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"

	"accounts/internal/apperr"
	"accounts/internal/records"
	"accounts/internal/schema"
	"accounts/internal/store"
)

// maxBody is the largest single-object request body.
const maxBody = 1 << 20

// errBodyHandled means the body problem was already answered.
var errBodyHandled = errors.New("httpapi: request body rejected")

// readObject reads a JSON object body, answering 415, 413 or 400 itself when
// the body is not one.
func (s *Server) readObject(w http.ResponseWriter, r *http.Request) (records.Body, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		writeJSON(w, http.StatusUnsupportedMediaType, bodyUnsupported)
		return nil, errBodyHandled
	}
	if r.ContentLength > maxBody {
		writeJSON(w, http.StatusRequestEntityTooLarge, bodyTooLarge)
		return nil, errBodyHandled
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeJSON(w, http.StatusRequestEntityTooLarge, bodyTooLarge)
		} else {
			writeJSON(w, http.StatusBadRequest, bodyParseError)
		}
		return nil, errBodyHandled
	}
	if !json.Valid(data) {
		writeJSON(w, http.StatusBadRequest, bodyParseError)
		return nil, errBodyHandled
	}
	var body records.Body
	if err := json.Unmarshal(data, &body); err != nil || body == nil {
		writeJSON(w, http.StatusBadRequest, apperr.FieldErrors{
			apperr.NonFieldErrors: {"Invalid data. Expected a dictionary."},
		})
		return nil, errBodyHandled
	}
	return body, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		panic("httpapi: response values always marshal: " + err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(data)
}

func writeObject(w http.ResponseWriter, status int, obj records.Object) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(appendObject(nil, obj))
}

// appendObject encodes an object with every field, in declaration order.
func appendObject(b []byte, obj records.Object) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, obj.ID...) // a UUID: nothing to escape
	b = append(b, `","created_at":"`...)
	b = obj.CreatedAt.UTC().AppendFormat(b, store.TimeLayout)
	b = append(b, '"')
	for _, f := range obj.Resource.Fields {
		b = append(b, ',', '"')
		b = append(b, f.Name...)
		b = append(b, '"', ':')
		b = appendValue(b, f, obj.Values[f.Name])
	}
	return append(b, '}')
}

func appendValue(b []byte, f *schema.Field, v any) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	if f.Type == schema.Ref {
		b = append(b, `{"id":"`...)
		b = append(b, v.(string)...) // a UUID: nothing to escape
		return append(b, '"', '}')
	}
	data, err := json.Marshal(v)
	if err != nil {
		panic("httpapi: field values always marshal: " + err.Error())
	}
	return append(b, bytes.TrimSpace(data)...)
}
