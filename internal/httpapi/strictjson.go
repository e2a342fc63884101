package httpapi

import (
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// Why a body that is valid JSON to encoding/json is still refused.
var (
	errInvalidUTF8   = errors.New("httpapi: JSON text is not valid UTF-8")
	errLoneSurrogate = errors.New("httpapi: JSON string escapes a lone UTF-16 surrogate")
	errDuplicateKey  = errors.New("httpapi: JSON object repeats a key")
)

// checkExactJSON refuses what encoding/json would silently repair: invalid
// UTF-8 (overlong encodings and encoded surrogates included) and \u escapes
// of lone surrogates, both of which it turns into U+FFFD, and a key given
// twice in one object, where it keeps the last. data must already be valid
// JSON (json.Valid), so only these checks are left to make; they are made
// on the decoded keys, so "a" and "\u0061" are the same key.
func checkExactJSON(data []byte) error {
	if !utf8.Valid(data) {
		return errInvalidUTF8
	}
	s := jsonScanner{data: data}
	return s.value()
}

// jsonScanner walks a valid JSON text.
type jsonScanner struct {
	data []byte
	i    int
}

func (s *jsonScanner) space() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *jsonScanner) value() error {
	s.space()
	switch s.data[s.i] {
	case '{':
		return s.object()
	case '[':
		s.i++
		s.space()
		if s.data[s.i] == ']' {
			s.i++
			return nil
		}
		for {
			if err := s.value(); err != nil {
				return err
			}
			s.space()
			c := s.data[s.i]
			s.i++
			if c == ']' {
				return nil
			}
		}
	case '"':
		_, err := s.string(false)
		return err
	}
	// A number or a literal: up to the next delimiter.
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ',', ']', '}', ' ', '\t', '\n', '\r':
			return nil
		}
		s.i++
	}
	return nil
}

func (s *jsonScanner) object() error {
	s.i++ // {
	s.space()
	if s.data[s.i] == '}' {
		s.i++
		return nil
	}
	var seen map[string]bool
	for {
		s.space()
		key, err := s.string(true)
		if err != nil {
			return err
		}
		if seen == nil {
			seen = map[string]bool{}
		}
		if seen[key] {
			return errDuplicateKey
		}
		seen[key] = true
		s.space()
		s.i++ // :
		if err := s.value(); err != nil {
			return err
		}
		s.space()
		c := s.data[s.i]
		s.i++
		if c == '}' {
			return nil
		}
	}
}

// string scans a string, checking that every \u escape of a surrogate is
// one half of a pair. With decode, it returns the string's value.
func (s *jsonScanner) string(decode bool) (string, error) {
	start := s.i
	s.i++ // opening quote
	escaped := false
	for {
		c := s.data[s.i]
		if c == '"' {
			s.i++
			break
		}
		if c != '\\' {
			s.i++
			continue
		}
		escaped = true
		if s.data[s.i+1] != 'u' {
			s.i += 2
			continue
		}
		r := hex4(s.data[s.i+2 : s.i+6])
		s.i += 6
		switch {
		case r >= 0xdc00 && r <= 0xdfff:
			return "", errLoneSurrogate
		case r >= 0xd800 && r <= 0xdbff:
			// The low half must follow at once.
			if s.i+6 > len(s.data) || s.data[s.i] != '\\' || s.data[s.i+1] != 'u' {
				return "", errLoneSurrogate
			}
			if low := hex4(s.data[s.i+2 : s.i+6]); low < 0xdc00 || low > 0xdfff {
				return "", errLoneSurrogate
			}
			s.i += 6
		}
	}
	if !decode {
		return "", nil
	}
	raw := s.data[start:s.i]
	if !escaped {
		return string(raw[1 : len(raw)-1]), nil
	}
	var v string
	err := json.Unmarshal(raw, &v)
	return v, err
}

// hex4 decodes four hex digits (valid JSON guarantees they are).
func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}
