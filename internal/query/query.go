// Package query parses the list query language of the contract's section 6
// into a typed value: filters with operators and negation, ordering, paging,
// search, and the output flags. Only names found in a resource's declaration
// get through, so nothing a client writes ever reaches SQL as text.
//
// It also evaluates filters and search on decoded values, for the fields
// that can only be compared after decryption.
package query

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"accounts/internal/apperr"
	"accounts/internal/personnummer"
	"accounts/internal/schema"

	"github.com/google/uuid"
)

// Op is a filter operator.
type Op string

// The operators of the contract.
const (
	Exact       Op = "exact"
	IExact      Op = "iexact"
	Contains    Op = "contains"
	IContains   Op = "icontains"
	StartsWith  Op = "startswith"
	IStartsWith Op = "istartswith"
	EndsWith    Op = "endswith"
	IEndsWith   Op = "iendswith"
	In          Op = "in"
	IsNull      Op = "isnull"
	GT          Op = "gt"
	GTE         Op = "gte"
	LT          Op = "lt"
	LTE         Op = "lte"
)

var (
	stringOps  = []Op{Exact, IExact, Contains, IContains, StartsWith, IStartsWith, EndsWith, IEndsWith, In, IsNull}
	orderedOps = []Op{Exact, GT, GTE, LT, LTE, In, IsNull}
	exactOps   = []Op{Exact, In, IsNull}
)

// Ops lists the operators a field type takes.
func Ops(t schema.Type) []Op {
	switch t {
	case schema.String, schema.Email, schema.Phone:
		return stringOps
	case schema.Date, schema.DateTime, schema.Number:
		return orderedOps
	default: // SSN, Bool, Ref, ID
		return exactOps
	}
}

// Filter is one parsed filter parameter.
type Filter struct {
	Field  *schema.Field
	Op     Op
	Negate bool
	// Values holds the parsed operand in the field's value form (see
	// schema.Values): one for most operators, several for In, a bool for
	// IsNull. Time values (created_at) are time.Time.
	Values []any
}

// OrderKey is one key of _order_by.
type OrderKey struct {
	Field *schema.Field
	Desc  bool
}

// Query is a parsed list request.
type Query struct {
	Filters []Filter
	// Order always ends with id, so equal keys are ordered stably.
	Order []OrderKey
	// Page and PageSize are 0 when the request does not page.
	Page, PageSize int
	// Search is the _search term; "" for none.
	Search     string
	Slim       bool
	Statistics bool
	JSONL      bool
}

// Paged reports whether the request asked for one page.
func (q Query) Paged() bool { return q.PageSize > 0 }

// MaxPageSize bounds _page_size.
const MaxPageSize = 1000

// MaxInValues bounds the values of a list's __in filters, all of them
// together: each value filtered in the database is a bound parameter of
// one statement, and SQLite takes at most 32,766 of them (PostgreSQL
// 65,535), so a query string of tiny values (64 KiB of commas) was a
// 500 there and a 200 on the other engine. A real list never comes near
// it: 64 KiB holds some 1,700 UUIDs.
const MaxInValues = 10_000

// MaxOffset bounds (_page - 1) × _page_size, the number of matches a page
// skips, so that the offset fits a 32-bit integer on every engine and in
// every client's arithmetic.
const MaxOffset = 1<<31 - 1

// Messages of query errors. They name the rule, never the submitted value.
const (
	msgUnknownParam  = "Unknown query parameter."
	msgUnsupported   = "Not supported."
	msgUnknownField  = "Unknown field."
	msgUnknownOp     = "Unknown or unsupported operator for this field."
	msgRepeated      = "Given more than once."
	msgOrderRepeated = "Names a field more than once."
	msgBool          = "Must be true or false."
	msgInvalidValue  = "Not a valid value for this field."
	msgPageTogether  = "_page and _page_size must be given together."
	msgPage          = "Must be a whole number of at least 1 in decimal digits, without sign or leading zero, with (_page - 1) × _page_size at most 2147483647."
	msgPageSize      = "Must be a whole number from 1 to 1000 in decimal digits, without sign or leading zero."
	msgJSONLStats    = "Can't be combined with _statistics."
	msgEmptySearch   = "May not be blank."
)

var msgInValues = fmt.Sprintf("A list's __in filters may hold at most %d values in all.", MaxInValues)

// Parse parses a list request's query string for res. Every problem is an
// error on the parameter's name; nothing is silently ignored.
func Parse(res *schema.Resource, values url.Values) (Query, error) {
	q := Query{}
	errs := apperr.FieldErrors{}
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	sort.Strings(names) // deterministic filter order
	inValues := 0
	for _, name := range names {
		vals := values[name]
		if len(vals) != 1 {
			errs.Add(name, msgRepeated)
			continue
		}
		v := vals[0]
		if schema.HasControl(v) {
			// No stored value holds one, and PostgreSQL text can't hold a NUL.
			errs.Add(name, msgInvalidValue)
			continue
		}
		if strings.HasPrefix(name, "_") {
			parseReserved(res, &q, name, v, values, errs)
			continue
		}
		switch strings.TrimSuffix(name, "!") {
		case "global_realestates", "global_segments":
			errs.Add(name, msgUnsupported)
			continue
		}
		f, msg := parseFilter(res, name, v)
		if msg != "" {
			errs.Add(name, msg)
			continue
		}
		if f.Op == In {
			if inValues += len(f.Values); inValues > MaxInValues {
				errs.Add(name, msgInValues)
				continue
			}
		}
		q.Filters = append(q.Filters, f)
	}
	if len(q.Order) == 0 {
		q.Order = []OrderKey{{Field: schema.CreatedAtField}}
	}
	if q.Order[len(q.Order)-1].Field != schema.IDField {
		q.Order = append(q.Order, OrderKey{Field: schema.IDField})
	}
	if errs.Has("_order_by") {
		q.Order = nil
	}
	if err := errs.Err(); err != nil {
		return Query{}, err
	}
	return q, nil
}

func parseReserved(res *schema.Resource, q *Query, name, v string, all url.Values, errs apperr.FieldErrors) {
	switch name {
	case "_page", "_page_size":
		other := "_page_size"
		if name == "_page_size" {
			other = "_page"
		}
		if _, ok := all[other]; !ok {
			errs.Add(name, msgPageTogether)
			return
		}
		n, ok := parsePositive(v)
		if name == "_page" {
			// The offset must fit every engine and client: the page
			// size is checked on its own parameter, then bounds the page.
			size, sizeOK := parsePositive(all.Get(other))
			if !ok || (sizeOK && size <= MaxPageSize && n-1 > MaxOffset/size) {
				errs.Add(name, msgPage)
				return
			}
			q.Page = n
			return
		}
		if !ok || n > MaxPageSize {
			errs.Add(name, msgPageSize)
			return
		}
		q.PageSize = n
	case "_order_by":
		parseOrder(res, q, name, v, errs)
	case "_search":
		if v == "" {
			// Only "" is blank, as in bodies: " " is a substring.
			errs.Add(name, msgEmptySearch)
			return
		}
		q.Search = v
	case "_slim", "_statistics", "_jsonl":
		b, ok := parseBool(v)
		if !ok {
			errs.Add(name, msgBool)
			return
		}
		switch name {
		case "_slim":
			q.Slim = b
		case "_statistics":
			q.Statistics = b
		case "_jsonl":
			q.JSONL = b
		}
		if name == "_jsonl" && b {
			if s, ok := all["_statistics"]; ok && len(s) == 1 && s[0] == "true" {
				errs.Add(name, msgJSONLStats)
			}
		}
	default:
		errs.Add(name, msgUnknownParam)
	}
}

func parseOrder(res *schema.Resource, q *Query, name, v string, errs apperr.FieldErrors) {
	seen := map[string]bool{}
	for _, key := range strings.Split(v, ",") {
		desc := strings.HasPrefix(key, "-")
		key = strings.TrimPrefix(key, "-")
		f := res.Filterable(key)
		if f == nil {
			errs.Add(name, msgUnknownField)
			return
		}
		if seen[key] {
			errs.Add(name, msgOrderRepeated)
			return
		}
		seen[key] = true
		q.Order = append(q.Order, OrderKey{Field: f, Desc: desc})
	}
}

// parsePositive parses a positive decimal integer written exactly: ASCII
// digits, no sign, no leading zero, no more than fits.
func parsePositive(v string) (int, bool) {
	if v == "" || len(v) > 10 || v[0] == '0' {
		return 0, false
	}
	if !asciiDigits(v) {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	return n, err == nil
}

// asciiDigits reports whether s holds nothing but the digits 0-9.
func asciiDigits(s string) bool { return strings.Trim(s, "0123456789") == "" }

// notDigit reports whether r is anything but one of the digits 0-9.
func notDigit(r rune) bool { return r < '0' || r > '9' }

func parseBool(v string) (bool, bool) {
	switch v {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// parseFilter parses "field", "field__op", with an optional trailing "!".
func parseFilter(res *schema.Resource, name, v string) (Filter, string) {
	f := Filter{Op: Exact}
	key := name
	if strings.HasSuffix(key, "!") {
		f.Negate = true
		key = strings.TrimSuffix(key, "!")
	}
	fieldName, op, hasOp := strings.Cut(key, "__")
	f.Field = res.Filterable(fieldName)
	if f.Field == nil {
		return f, msgUnknownField
	}
	if hasOp {
		f.Op = Op(op)
		if !opAllowed(f.Field.Type, f.Op) {
			return f, msgUnknownOp
		}
	}
	switch f.Op {
	case IsNull:
		b, ok := parseBool(v)
		if !ok {
			return f, msgBool
		}
		f.Values = []any{b}
	case In:
		for _, part := range strings.Split(v, ",") {
			val, ok := parseValue(f.Field, part)
			if !ok {
				return f, msgInvalidValue
			}
			f.Values = append(f.Values, val)
		}
	default:
		val, ok := parseValue(f.Field, v)
		if !ok {
			return f, msgInvalidValue
		}
		f.Values = []any{val}
	}
	if f.Field.Type == schema.DateTime && f.Op != IsNull {
		f = onMicroseconds(f)
	}
	return f, ""
}

// timeOperand is a created_at operand: its time cut to the microsecond,
// and whether the cut dropped a non-zero digit.
type timeOperand struct {
	t    time.Time
	past bool
}

// onMicroseconds writes a created_at filter over the times stored, which
// are whole microseconds, so that it compares as its operands are written,
// however many digits they have. A time T past a microsecond m (before
// m + 1 µs) comes after every stored time up to m and before every one from
// m + 1 µs: lt T is lte m, gte T is gt m, lte and gt T are lte and gt m,
// and no stored time is T (exact matches nothing, in leaves T out). Go's
// own time.Now() in RFC 3339 has nanoseconds, so a client that filters by
// the time it was last run sends such a T.
func onMicroseconds(f Filter) Filter {
	times := make([]any, 0, len(f.Values))
	for _, v := range f.Values {
		op := v.(timeOperand)
		if op.past {
			switch f.Op {
			case LT:
				f.Op = LTE
			case GTE:
				f.Op = GT
			case Exact, In:
				continue
			}
		}
		times = append(times, op.t)
	}
	if len(times) == 0 {
		// An in of no value matches nothing, as exact of no stored time.
		f.Op = In
	}
	f.Values = times
	return f
}

func opAllowed(t schema.Type, op Op) bool {
	for _, o := range Ops(t) {
		if o == op {
			return true
		}
	}
	return false
}

// rfc3339Shape reports whether v is written as RFC 3339 writes a time:
// two-digit month, day, hour, minute and second, an upper-case "T", a
// fraction after a "." only, and "Z" or an offset of hours 00-23 and
// minutes 00-59. time.Parse checks the values but not all of the form: it
// takes a one-digit hour, a "," before the fraction, and "+24:00" or
// "+23:60", none of which RFC 3339 (or Django, for the offsets) allows.
func rfc3339Shape(v string) bool {
	const clock = len("2006-01-02T15:04:05")
	if len(v) < clock+1 || !asciiDigits(v[0:4]) || v[4] != '-' || !asciiDigits(v[5:7]) || v[7] != '-' ||
		!asciiDigits(v[8:10]) || v[10] != 'T' || !asciiDigits(v[11:13]) || v[13] != ':' ||
		!asciiDigits(v[14:16]) || v[16] != ':' || !asciiDigits(v[17:19]) {
		return false
	}
	zone := v[clock:]
	if frac, ok := strings.CutPrefix(zone, "."); ok {
		end := strings.IndexFunc(frac, notDigit)
		if end <= 0 {
			return false
		}
		zone = frac[end:]
	}
	if zone == "Z" {
		return true
	}
	return len(zone) == 6 && (zone[0] == '+' || zone[0] == '-') && asciiDigits(zone[1:3]) &&
		zone[3] == ':' && asciiDigits(zone[4:6]) && zone[1:3] <= "23" && zone[4:6] <= "59"
}

// pastMicrosecond reports whether the RFC 3339 time v has a non-zero digit
// of its seconds' fraction past the sixth. It reads the digits as written:
// time.Parse keeps nine of them and drops the rest unseen.
func pastMicrosecond(v string) bool {
	_, clock, _ := strings.Cut(v, "T")
	_, frac, ok := strings.Cut(clock, ".")
	if !ok {
		return false
	}
	end := strings.IndexFunc(frac, notDigit)
	if end < 0 {
		end = len(frac)
	}
	return len(frac[:end]) > 6 && strings.Trim(frac[6:end], "0") != ""
}

// parseValue parses one filter operand for field f.
func parseValue(f *schema.Field, v string) (any, bool) {
	switch f.Type {
	case schema.SSN:
		n, err := personnummer.Parse(v)
		if err != nil {
			return nil, false
		}
		return n.Canonical(), true
	case schema.Date:
		if _, err := schema.ParseDate(v); err != nil {
			return nil, false
		}
		return v, true
	case schema.DateTime:
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil || !rfc3339Shape(v) {
			return nil, false
		}
		if y := t.UTC().Year(); y < 1 || y > 9999 {
			// Stored times are of these years, and written with four
			// digits: an operand outside them (year 0, or an offset
			// past year 9999) would compare as text out of order.
			return nil, false
		}
		return timeOperand{t.UTC().Truncate(time.Microsecond), pastMicrosecond(v)}, true
	case schema.Number:
		return schema.ParseNumber(v)
	case schema.Bool:
		b, ok := parseBool(v)
		return b, ok
	case schema.Ref, schema.ID:
		id, err := uuid.Parse(v)
		if err != nil || len(v) != 36 {
			return nil, false
		}
		return id.String(), true
	}
	return v, true
}
