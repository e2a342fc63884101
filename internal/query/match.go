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
		return foldedEqual(s, want)
	case Contains:
		return strings.Contains(s, want)
	case IContains:
		return ContainsFold(s, want)
	case StartsWith:
		return strings.HasPrefix(s, want)
	case IStartsWith:
		return hasPrefixFold(s, want)
	case EndsWith:
		return strings.HasSuffix(s, want)
	case IEndsWith:
		return hasSuffixFold(s, want)
	}
	return false
}

// FoldedMatcher returns, for a case-insensitive filter (iexact, icontains,
// istartswith, iendswith), a test of a non-null value given in its
// Fold form that answers as Match does on the value itself,
// negation included; nil for any other filter. A caller that keeps many
// values lower-cased (the service's cache of decoded objects) then folds
// only the filter's value, once, instead of both sides on every test.
func (f Filter) FoldedMatcher() func(folded string) bool {
	switch f.Op {
	case IExact, IContains, IStartsWith, IEndsWith:
	default:
		return nil
	}
	want, _ := f.Values[0].(string)
	want = Fold(want)
	var m func(string) bool
	switch f.Op {
	case IExact:
		m = func(s string) bool { return s == want }
	case IContains:
		m = func(s string) bool { return strings.Contains(s, want) }
	case IStartsWith:
		m = func(s string) bool { return strings.HasPrefix(s, want) }
	case IEndsWith:
		m = func(s string) bool { return strings.HasSuffix(s, want) }
	}
	if f.Negate {
		return func(s string) bool { return !m(s) }
	}
	return m
}

// Case-insensitive matching means: compare the Fold forms. The helpers
// below answer that without allocating when both sides are ASCII, the
// common case on every list request, and fall back to Fold otherwise.

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func foldedEqual(a, b string) bool {
	if isASCII(a) && isASCII(b) {
		if len(a) != len(b) {
			return false
		}
		for i := 0; i < len(a); i++ {
			if lowerASCII(a[i]) != lowerASCII(b[i]) {
				return false
			}
		}
		return true
	}
	return Fold(a) == Fold(b)
}

// hasPrefixFold reports whether Fold(s) starts with Fold(prefix).
func hasPrefixFold(s, prefix string) bool {
	if !isASCII(s) || !isASCII(prefix) {
		return strings.HasPrefix(Fold(s), Fold(prefix))
	}
	return len(s) >= len(prefix) && foldedEqual(s[:len(prefix)], prefix)
}

// hasSuffixFold reports whether Fold(s) ends with Fold(suffix).
func hasSuffixFold(s, suffix string) bool {
	if !isASCII(s) || !isASCII(suffix) {
		return strings.HasSuffix(Fold(s), Fold(suffix))
	}
	return len(s) >= len(suffix) && foldedEqual(s[len(s)-len(suffix):], suffix)
}

// ContainsFold reports whether Fold(s) contains Fold(sub), without
// allocating when both are ASCII.
func ContainsFold(s, sub string) bool {
	if !isASCII(s) || !isASCII(sub) {
		return strings.Contains(Fold(s), Fold(sub))
	}
	if len(sub) == 0 {
		return true
	}
	first := lowerASCII(sub[0])
	for i := 0; i+len(sub) <= len(s); i++ {
		if lowerASCII(s[i]) != first {
			continue
		}
		j := 1
		for j < len(sub) && lowerASCII(s[i+j]) == lowerASCII(sub[j]) {
			j++
		}
		if j == len(sub) {
			return true
		}
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
// term, case-insensitively.
func MatchSearch(res *schema.Resource, term string, values schema.Values) bool {
	for _, f := range res.SearchFields() {
		if s, ok := values[f.Name].(string); ok && ContainsFold(s, term) {
			return true
		}
	}
	return false
}
