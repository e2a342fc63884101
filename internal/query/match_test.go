package query

import (
	"strings"
	"testing"
)

// The fast case-insensitive helpers must agree with the ToLower definition.
func TestFoldHelpersAgreeWithToLower(t *testing.T) {
	words := []string{"", "a", "A", "Berg", "BERG", "åberg", "ÅBERG", "Sjöström", "İstanbul", "ß", "SS", "K", "k", "abcABC", "x-y.z"}
	for _, s := range words {
		for _, sub := range words {
			ls, lsub := strings.ToLower(s), strings.ToLower(sub)
			if got, want := ContainsFold(s, sub), strings.Contains(ls, lsub); got != want {
				t.Errorf("ContainsFold(%q, %q) = %v", s, sub, got)
			}
			if got, want := hasPrefixFold(s, sub), strings.HasPrefix(ls, lsub); got != want {
				t.Errorf("hasPrefixFold(%q, %q) = %v", s, sub, got)
			}
			if got, want := hasSuffixFold(s, sub), strings.HasSuffix(ls, lsub); got != want {
				t.Errorf("hasSuffixFold(%q, %q) = %v", s, sub, got)
			}
			if got, want := foldedEqual(s, sub), ls == lsub; got != want {
				t.Errorf("foldedEqual(%q, %q) = %v", s, sub, got)
			}
		}
	}
}

func FuzzContainsFold(f *testing.F) {
	f.Add("Lindqvist", "QV")
	f.Add("Åberg", "BERG")
	f.Fuzz(func(t *testing.T, s, sub string) {
		if ContainsFold(s, sub) != strings.Contains(strings.ToLower(s), strings.ToLower(sub)) {
			t.Fatal("ContainsFold disagrees with ToLower")
		}
	})
}

// FoldedMatcher, given a value lower-cased ahead of time, answers as Match
// does on the value, for every case-insensitive operator, negated or not.
func TestFoldedMatcherAgreesWithMatch(t *testing.T) {
	words := []string{"", "a", "A", "Berg", "BERG", "åberg", "ÅBERG", "Sjöström", "İstanbul", "ß", "SS", "K", "k", "abcABC", "x-y.z"}
	for _, op := range []Op{IExact, IContains, IStartsWith, IEndsWith} {
		for _, negate := range []bool{false, true} {
			for _, want := range words {
				f := Filter{Op: op, Negate: negate, Values: []any{want}}
				m := f.FoldedMatcher()
				if m == nil {
					t.Fatalf("op %v: no folded matcher", op)
				}
				for _, v := range words {
					if got := m(strings.ToLower(v)); got != f.Match(v) {
						t.Errorf("op %v negate %v, %q on %q: folded %v, Match %v", op, negate, want, v, got, !got)
					}
				}
			}
		}
	}
	for _, op := range []Op{Exact, Contains, In, IsNull, GT} {
		if (Filter{Op: op, Values: []any{"a"}}).FoldedMatcher() != nil {
			t.Errorf("op %v: a folded matcher for a case-sensitive or non-text filter", op)
		}
	}
}
