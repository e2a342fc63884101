package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"accounts/internal/apperr"
	"accounts/internal/records"
	"accounts/internal/schema"
	"accounts/internal/store"
)

// Request body limits: one object, and a bulk write.
const (
	maxBody     = 1 << 20
	maxBulkBody = 16 << 20
)

// readObject reads a JSON object body.
func readObject(w http.ResponseWriter, r *http.Request) (records.Body, error) {
	var body records.Body
	err := readJSON(w, r, maxBody, &body, schema.MsgNotObject)
	if err == nil && body == nil {
		return nil, wrongShape(schema.MsgNotObject)
	}
	return body, err
}

// readItems reads a bulk write body: a JSON array. An item that is not a
// JSON object (null included) is nil in the result, so that records.Bulk
// answers the error at its index, beside the other items' own, as the
// contract's one error object per item asks. It stops at the item past
// records.MaxBulkItems: 16 MiB of "[1,1,…" is 8 million items, which
// decoded whole took a gigabyte.
func readItems(w http.ResponseWriter, r *http.Request) ([]records.Body, error) {
	const notList = "Invalid data. Expected a list of objects."
	data, err := readExactJSON(w, r, maxBulkBody)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if open, err := dec.Token(); err != nil || open != json.Delim('[') {
		return nil, wrongShape(notList)
	}
	var items []records.Body
	for dec.More() {
		if len(items) == records.MaxBulkItems {
			return nil, records.ErrTooManyItems
		}
		var item records.Body
		if err := dec.Decode(&item); err != nil {
			// The decoder has read the whole item either way; one that
			// is not an object leaves item nil.
			var notObject *json.UnmarshalTypeError
			if !errors.As(err, &notObject) {
				return nil, apperr.New(apperr.Malformed, err)
			}
			item = nil
		}
		items = append(items, item)
	}
	return items, nil
}

func wrongShape(msg string) error {
	return apperr.FieldErrors{apperr.NonFieldErrors: {msg}}.Err()
}

// readJSON reads a JSON body of at most limit bytes into dst, as
// readExactJSON reads it; shape is the message when the JSON does not fit
// dst.
func readJSON(w http.ResponseWriter, r *http.Request, limit int64, dst any, shape string) error {
	data, err := readExactJSON(w, r, limit)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, dst); err != nil {
		return wrongShape(shape)
	}
	return nil
}

// errBodyCutShort is a body that could not be read to its end: its
// connection or stream ended, or its framing did not add up.
var errBodyCutShort = errors.New("the body was cut short")

// readExactJSON reads a JSON body of at most limit bytes. It answers 415
// for anything but one Content-Type, application/json in UTF-8, without a
// content coding, 413 past the limit, and 400 for a body that is not JSON
// or does not decode exactly (see checkExactJSON). w learns of an
// oversized body, so that the connection is closed rather than the rest
// read.
func readExactJSON(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	types := r.Header.Values("Content-Type")
	if len(types) != 1 {
		// One field, once (RFC 9110 8.3): of two, which one a proxy in
		// front went by is anyone's guess.
		return nil, apperr.New(apperr.UnsupportedMedia, nil)
	}
	mt, params, err := mime.ParseMediaType(types[0])
	if err != nil || mt != "application/json" {
		return nil, apperr.New(apperr.UnsupportedMedia, nil)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return nil, apperr.New(apperr.UnsupportedMedia, nil)
	}
	if _, coded := r.Header["Content-Encoding"]; coded {
		// A compressed body would be read as bytes that are not JSON; and
		// "identity" is no content coding (RFC 9110, 8.4.1): the contract
		// refuses any.
		return nil, apperr.New(apperr.UnsupportedMedia, nil)
	}
	if r.ContentLength > limit {
		return nil, apperr.New(apperr.TooLarge, nil)
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			return nil, apperr.New(apperr.TooLarge, nil)
		case errors.Is(err, os.ErrDeadlineExceeded):
			// The body did not arrive within the server's read timeout:
			// the request ran out of time, whatever its bytes were.
			return nil, apperr.Refused(apperr.Overloaded, reasonRequestTimeout, time.Second)
		}
		// The body ended other than where it said it would: its
		// connection ended inside it (a client that went away, a network
		// that dropped it), or, over HTTP/2, its stream was reset or
		// carried another length than its content-length. Still a 400
		// (for a client that only closed its side), but no security
		// event: nothing was sent that did not decode.
		return nil, apperr.New(apperr.Malformed, errBodyCutShort)
	}
	if !json.Valid(data) {
		return nil, apperr.New(apperr.Malformed, nil)
	}
	if err := checkExactJSON(data); err != nil {
		return nil, apperr.New(apperr.Malformed, err)
	}
	return data, nil
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

// objectBuffers keep the buffers objects are encoded into between answers:
// a GET answers about 1 KiB, which appending from nothing allocated several
// times over, on every request.
var objectBuffers = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledBuffer is the largest buffer kept for reuse: an object with long
// text would otherwise keep its buffer's size for good.
const maxPooledBuffer = 64 << 10

func writeObject(w http.ResponseWriter, status int, obj records.Object) {
	buf := objectBuffers.Get().(*[]byte)
	b := appendObject((*buf)[:0], obj)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b) // copied: the buffer is free again when Write returns
	if cap(b) <= maxPooledBuffer {
		*buf = b
		objectBuffers.Put(buf)
	}
}

// appendObject encodes an object with every field, in declaration order.
func appendObject(b []byte, obj records.Object) []byte {
	b = append(b, '{')
	b = appendNamed(b, obj, "id")
	b = append(b, ',')
	b = appendNamed(b, obj, "created_at")
	for _, f := range obj.Resource.Fields {
		b = append(b, ',')
		b = appendKey(b, f.Name)
		b = appendValue(b, f, obj.Values[f.Name])
	}
	return append(b, '}')
}

// appendSlim encodes an object's slim form: the resource's slim fields, in
// their declared order.
func appendSlim(b []byte, obj records.Object) []byte {
	b = append(b, '{')
	for i, name := range obj.Resource.Slim {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendNamed(b, obj, name)
	}
	return append(b, '}')
}

// appendKey encodes a field's name and the colon after it: names are
// identifiers, with nothing to escape.
func appendKey(b []byte, name string) []byte {
	b = append(b, '"')
	b = append(b, name...)
	return append(b, '"', ':')
}

// appendNamed encodes one "name":value pair of an object.
func appendNamed(b []byte, obj records.Object, name string) []byte {
	b = appendKey(b, name)
	switch name {
	case "id":
		b = append(b, '"')
		b = append(b, obj.ID...) // a UUID: nothing to escape
		return append(b, '"')
	case "created_at":
		b = append(b, '"')
		b = appendTime(b, obj.CreatedAt)
		return append(b, '"')
	}
	return appendValue(b, obj.Resource.Field(name), obj.Values[name])
}

// appendTime writes t in UTC as store.TimeLayout does
// ("2006-01-02T15:04:05.000000Z"), digit by digit: time.AppendFormat,
// which parses its layout on every call, was 9% of a list profile (a page
// has a hundred). A year outside 0-9999 goes to AppendFormat.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, store.TimeLayout)
	}
	hour, minute, second := t.Clock()
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, minute, 2)
	b = append(b, ':')
	b = appendDigits(b, second, 2)
	b = append(b, '.')
	b = appendDigits(b, t.Nanosecond()/1000, 6)
	return append(b, 'Z')
}

// appendDigits writes the n lowest decimal digits of v (v ≥ 0), zero-padded.
func appendDigits(b []byte, v, n int) []byte {
	b = append(b, make([]byte, n)...)
	for i := len(b) - 1; i >= len(b)-n; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return b
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
	switch x := v.(type) {
	case string:
		return appendString(b, x)
	case bool:
		return strconv.AppendBool(b, x)
	}
	data, err := json.Marshal(v)
	if err != nil {
		panic("httpapi: field values always marshal: " + err.Error())
	}
	return append(b, bytes.TrimSpace(data)...)
}

// appendString encodes s as a JSON string exactly as encoding/json's
// Marshal does (HTML-safe: <, > and & escaped; U+2028 and U+2029 escaped;
// an invalid UTF-8 byte as U+FFFD), without Marshal's allocations: every
// object of a response has a dozen strings.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
