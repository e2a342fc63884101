package schema

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"accounts/internal/personnummer"

	"github.com/google/uuid"
)

// Validation messages, in the style of Django REST Framework. None of them
// repeats the submitted value.
const (
	MsgRequired     = "This field is required."
	MsgNull         = "This field may not be null."
	MsgBlank        = "This field may not be blank."
	MsgNotString    = "Not a valid string."
	MsgControlChars = "Control characters are not allowed."
	MsgEmail        = "Enter a valid email address."
	MsgPhone        = "Enter a valid phone number."
	MsgSSN          = "Enter a valid Swedish personal identity number."
	MsgDate         = "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."
	MsgBool         = "Must be a valid boolean."
	MsgNumber       = "A valid number is required."
	MsgRef          = `Incorrect type. Expected {"id": "<uuid>"}.`
	MsgPattern      = "This value does not match the required pattern."
	MsgUnknownField = "Unknown field."
	MsgNotObject    = "Invalid data. Expected a dictionary."
)

// MsgNotExist is the message for a reference to an object the customer does
// not have. The id is not personal data; the contract asks for it.
func MsgNotExist(id string) string { return fmt.Sprintf("Object with id=%s does not exist.", id) }

var phonePattern = regexp.MustCompile(`^\+?1?\d{7,15}$`)

// Decode validates one JSON value for the field and returns it in its
// stored form (see Values), or a message naming the rule it breaks.
// A JSON null decodes to nil; whether null is allowed is the caller's rule
// (see Nullable).
func (f *Field) Decode(raw json.RawMessage) (any, string) {
	raw = bytes.TrimSpace(raw)
	if bytes.Equal(raw, []byte("null")) {
		if !f.Nullable() {
			return nil, MsgNull
		}
		return nil, ""
	}
	switch f.Type {
	case Bool:
		var b bool
		if json.Unmarshal(raw, &b) != nil {
			return nil, MsgBool
		}
		return b, ""
	case Number:
		n, ok := ParseNumber(string(raw))
		if !ok {
			return nil, MsgNumber
		}
		if n < f.Min || n == f.Min && beyond(string(raw), f.Min, -1) {
			return nil, fmt.Sprintf("Ensure this value is greater than or equal to %v.", f.Min)
		}
		if n > f.Max || n == f.Max && beyond(string(raw), f.Max, +1) {
			return nil, fmt.Sprintf("Ensure this value is less than or equal to %v.", f.Max)
		}
		return n, ""
	case Ref:
		// Exactly {"id": "<uuid>"}: a struct would also take "ID" or "Id",
		// and ignore any other key.
		var ref map[string]json.RawMessage
		if raw[0] != '{' || json.Unmarshal(raw, &ref) != nil || len(ref) != 1 {
			return nil, MsgRef
		}
		var id string
		if rawID, ok := ref["id"]; !ok || json.Unmarshal(rawID, &id) != nil || len(id) != 36 {
			return nil, MsgRef
		}
		parsed, err := uuid.Parse(id)
		if err != nil {
			return nil, MsgRef
		}
		return parsed.String(), ""
	}
	var s string
	if raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return nil, MsgNotString
	}
	if s == "" {
		return nil, MsgBlank
	}
	if HasControl(s) {
		return nil, MsgControlChars
	}
	if f.MaxLen > 0 && utf8.RuneCountInString(s) > f.MaxLen {
		return nil, fmt.Sprintf("Ensure this field has no more than %d characters.", f.MaxLen)
	}
	switch f.Type {
	case Email:
		if !validEmail(s) {
			return nil, MsgEmail
		}
	case Phone:
		if !phonePattern.MatchString(s) {
			return nil, MsgPhone
		}
	case SSN:
		n, err := personnummer.Parse(s)
		if err != nil {
			return nil, MsgSSN
		}
		s = n.Canonical()
	case Date:
		if _, err := ParseDate(s); err != nil {
			return nil, MsgDate
		}
	}
	if f.Check != nil {
		if msg := f.Check(s); msg != "" {
			return nil, msg
		}
	}
	return s, ""
}

// Nullable reports whether the field may hold null.
func (f *Field) Nullable() bool { return !f.Required && f.Type != Bool }

// numberPattern is JSON's number grammar: strconv alone would also take
// "NaN", "Inf", "+1", ".5" and hexadecimal floats.
var numberPattern = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$`)

// ParseNumber parses a number written in JSON's grammar, in a body or a
// filter. One that does not fit a float64 is refused, not rounded to what
// does: past its range (1e400), and so small that only zero is left
// (1e-400, which is not 0).
//
// strconv is given the number as decimalParts writes it, 0.digits×10^exp:
// it keeps at most 800 digits of a literal, and the position of the point
// in a whole part longer than that was lost with them ("9" and a thousand
// zeros, "e-999", which is 90, parsed as 9e-200).
func ParseNumber(lit string) (float64, bool) {
	if !numberPattern.MatchString(lit) {
		return 0, false
	}
	sign, digits, exp := decimalParts(lit)
	if digits == "" {
		if strings.HasPrefix(lit, "-") {
			return math.Copysign(0, -1), true // "-0", as strconv reads it
		}
		return 0, true
	}
	canonical := "0." + digits + "e" + strconv.Itoa(exp)
	if sign < 0 {
		canonical = "-" + canonical
	}
	n, err := strconv.ParseFloat(canonical, 64)
	if err != nil || math.IsInf(n, 0) || n == 0 {
		return 0, false
	}
	return n, true
}

// beyond reports whether a number literal whose float64 is bound lies past
// it, below (dir -1) or above (+1), compared exactly:
// 90.000000000000000001 is a float64 of 90, but past a maximum of 90, and
// 89.999999999999999999 is one too, but within it. The bound is compared
// as the schema writes it (its shortest decimal), digit by digit, in time
// linear in the literal's length, however long it is.
func beyond(lit string, bound float64, dir int) bool {
	return compareDecimal(lit, strconv.FormatFloat(bound, 'f', -1, 64)) == dir
}

// compareDecimal compares two numbers written in JSON's grammar exactly:
// -1, 0 or +1 as a is less than, equal to or greater than b.
func compareDecimal(a, b string) int {
	sa, da, ea := decimalParts(a)
	sb, db, eb := decimalParts(b)
	if sa != sb {
		return cmp.Compare(sa, sb)
	}
	// Same sign: the larger magnitude is the larger number when positive.
	c := cmp.Compare(ea, eb)
	if c == 0 {
		c = strings.Compare(da, db)
	}
	return sa * c
}

// decimalParts writes a JSON number as sign × 0.digits × 10^exp: sign -1,
// 0 or +1; digits without leading or trailing zeros (empty for zero). Two
// numbers compare by sign, then exp, then digits as strings. An exponent
// too large for an int can't belong to a number whose float64 is a bound,
// and reads as the largest one.
func decimalParts(lit string) (sign int, digits string, exp int) {
	sign = 1
	if strings.HasPrefix(lit, "-") {
		sign, lit = -1, lit[1:]
	}
	mantissa, exponent, _ := strings.Cut(strings.ToLower(lit), "e")
	whole, frac, _ := strings.Cut(mantissa, ".")
	all := strings.TrimLeft(whole+frac, "0")
	point := len(whole) - (len(whole) + len(frac) - len(all))
	digits = strings.TrimRight(all, "0")
	if digits == "" {
		return 0, "", 0
	}
	e := 0
	if exponent != "" {
		n, err := strconv.Atoi(exponent)
		if err != nil {
			n = math.MaxInt32
			if strings.HasPrefix(exponent, "-") {
				n = math.MinInt32
			}
		}
		e = max(min(n, math.MaxInt32), math.MinInt32)
	}
	return sign, digits, point + e
}

// ParseDate parses a YYYY-MM-DD date of the years 1 to 9999: there is no
// year 0 (time.Parse would take "0000-01-01", which Pigello's dates, as
// Python's, refuse).
func ParseDate(s string) (time.Time, error) {
	if len(s) != len(time.DateOnly) {
		return time.Time{}, fmt.Errorf("schema: date must be YYYY-MM-DD")
	}
	t, err := time.Parse(time.DateOnly, s)
	if err == nil && t.Year() < 1 {
		return time.Time{}, fmt.Errorf("schema: there is no year 0")
	}
	return t, err
}

// HasControl reports whether s holds a control character other than tab:
// no stored string may, and no query value can match one that does not.
func HasControl(s string) bool {
	for _, r := range s {
		if r == '\t' {
			continue
		}
		if r < 0x20 || (r >= 0x7f && r < 0xa0) {
			return true
		}
	}
	return false
}

// EmailPattern is the contract's rule of an e-mail address, the one the
// OpenAPI document's "format": "email" names and every common validator
// of it accepts (Django's behind Pigello, JSON Schema's, the generated
// clients'): a local part of dot-separated atoms of letters, digits and
// !#$%&'*+/=?^_`{|}~- (no quoted strings, comments or brackets), one '@',
// and a domain of at least two dot-separated labels of letters, digits and
// hyphens, neither beginning nor ending with one, of at most 63
// characters, the last of two or more. ASCII only: a domain with other
// letters is given in its IDNA form (xn--). Anything looser was stored and
// then refused by a generated client reading it back. Go and ECMA-262 read
// it alike: the service checks with it, and the document publishes it.
const EmailPattern = "^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*" +
	"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z0-9][A-Za-z0-9-]{0,61}[A-Za-z0-9]$"

var emailPattern = regexp.MustCompile(EmailPattern)

func validEmail(s string) bool { return emailPattern.MatchString(s) }
