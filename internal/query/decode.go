package query

import (
	"net/url"
	"strings"
	"unicode/utf8"

	"accounts/internal/apperr"
	"accounts/internal/schema"
)

// Messages of query-string decoding errors.
const (
	msgUndecodable = "Not valid percent-encoded UTF-8 text."
	msgSemicolon   = "A semicolon is not a parameter separator: encode it as %3B."
	msgNoName      = "A query parameter has no name or a name that is not valid percent-encoded UTF-8 text."
)

// Decode decodes a raw query string exactly, or not at all. Go's own
// parser (url.ParseQuery, and r.URL.Query, which ignores its error) drops a
// pair it can't decode and keeps the rest: "?ssn=%GG" would become a list
// of every identity. Here every pair must be "&"-separated, percent-encoded
// with two hex digits per "%", and decode to UTF-8 text without control
// characters (tab aside, as in stored strings); anything else is a 400 on
// the parameter's name when the name itself decodes, else on
// non_field_errors. Empty pairs ("a=1&&b=2", a trailing "&") carry no
// parameter and are skipped.
func Decode(raw string) (url.Values, error) {
	values := url.Values{}
	errs := apperr.FieldErrors{}
	for pair := range strings.SplitSeq(raw, "&") {
		if pair == "" {
			continue
		}
		rawName, rawValue, _ := strings.Cut(pair, "=")
		name, nameOK := decodeComponent(rawName)
		if !nameOK || name == "" {
			if !errs.Has(apperr.NonFieldErrors) {
				errs.Add(apperr.NonFieldErrors, msgNoName)
			}
			continue
		}
		if strings.Contains(rawValue, ";") {
			if !errs.Has(name) {
				errs.Add(name, msgSemicolon)
			}
			continue
		}
		value, ok := decodeComponent(rawValue)
		if !ok {
			if !errs.Has(name) {
				errs.Add(name, msgUndecodable)
			}
			continue
		}
		values[name] = append(values[name], value)
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return values, nil
}

// decodeComponent decodes one name or value of a query string: "+" is a
// space, "%XX" a byte; the result must be valid UTF-8 with no control
// character but tab. A ";" in a name is refused here too (it is not text a
// field name can hold, and other parsers split on it).
func decodeComponent(s string) (string, bool) {
	if strings.ContainsRune(s, ';') {
		return "", false
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '%':
			if i+2 >= len(s) {
				return "", false
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return "", false
			}
			b.WriteByte(hi<<4 | lo)
			i += 2
		case '+':
			b.WriteByte(' ')
		default:
			b.WriteByte(c)
		}
	}
	out := b.String()
	if !utf8.ValidString(out) || schema.HasControl(out) {
		return "", false
	}
	return out, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
