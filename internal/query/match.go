package query

import (
	"strings"
	"time"

	"accounts/internal/schema"
)

// Match reports whether a decoded value (schema.Values form; time.Time for
// created_at) passes the filter. A null value matches only isnull=true; so
// a negated filter keeps nulls, as an exclusion does in Django.
func (f Filter) Match(v any) bool {
	return f.match(v) != f.Negate
}

func (f Filter) match(v any) bool {
	if f.Op == IsNull {
		return (v == nil) == f.Values[0].(bool)
	}
	if v == nil {
		return false
	}
	switch f.Op {
	case In:
		for _, want := range f.Values {
			if compare(v, want) == 0 {
				return true
			}
		}
		return false
	case Exact:
		return compare(v, f.Values[0]) == 0
	case GT:
		return compare(v, f.Values[0]) > 0
	case GTE:
		return compare(v, f.Values[0]) >= 0
	case LT:
		return compare(v, f.Values[0]) < 0
	case LTE:
		return compare(v, f.Values[0]) <= 0
	}
	s, _ := v.(string)
	want, _ := f.Values[0].(string)
	switch f.Op {
	case IExact:
		return strings.ToLower(s) == strings.ToLower(want)
	case Contains:
		return strings.Contains(s, want)
	case IContains:
		return strings.Contains(strings.ToLower(s), strings.ToLower(want))
	case StartsWith:
		return strings.HasPrefix(s, want)
	case IStartsWith:
		return strings.HasPrefix(strings.ToLower(s), strings.ToLower(want))
	case EndsWith:
		return strings.HasSuffix(s, want)
	case IEndsWith:
		return strings.HasSuffix(strings.ToLower(s), strings.ToLower(want))
	}
	return false
}

// Compare orders two non-null values of one field: strings (dates in
// YYYY-MM-DD and UUIDs included) by bytes, numbers numerically, false before
// true, times chronologically. Null sorts before every value.
func Compare(a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	return compare(a, b)
}

func compare(a, b any) int {
	switch x := a.(type) {
	case string:
		return strings.Compare(x, b.(string))
	case float64:
		y := b.(float64)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	case bool:
		y := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	case time.Time:
		return x.Compare(b.(time.Time))
	}
	return 0
}

// MatchSearch reports whether any of res's search fields contains the
// (lower-cased) term, case-insensitively.
func MatchSearch(res *schema.Resource, term string, values schema.Values) bool {
	for _, f := range res.SearchFields() {
		if s, ok := values[f.Name].(string); ok && strings.Contains(strings.ToLower(s), term) {
			return true
		}
	}
	return false
}
