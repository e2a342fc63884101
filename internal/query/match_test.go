package query

import (
	"strings"
	"testing"
	"unicode"
)

// foldWords are words whose case-insensitive comparisons differ between
// folds: ASCII, Swedish, Turkish dotted and dotless i, Greek final sigma,
// the long s, the Kelvin sign, sharp s.
var foldWords = []string{"", "a", "A", "Berg", "BERG", "åberg", "ÅBERG", "Sjöström", "İstanbul", "istanbul", "ISTANBUL",
	"Yıldız", "YILDIZ", "yildiz", "Σίσυφος", "ΣΊΣΥΦΟΣ", "σίσυφοσ", "ſtest", "STEST", "ß", "ẞ", "SS", "K", "\u212a", "k", "abcABC", "x-y.z"}

// The fast case-insensitive helpers must agree with the Fold definition.
func TestFoldHelpersAgreeWithFold(t *testing.T) {
	for _, s := range foldWords {
		for _, sub := range foldWords {
			ls, lsub := Fold(s), Fold(sub)
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
		if ContainsFold(s, sub) != strings.Contains(Fold(s), Fold(sub)) {
			t.Fatal("ContainsFold disagrees with Fold")
		}
	})
}

// FoldedMatcher, given a value folded ahead of time, answers as Match
// does on the value, for every case-insensitive operator, negated or not.
func TestFoldedMatcherAgreesWithMatch(t *testing.T) {
	words := foldWords
	for _, op := range []Op{IExact, IContains, IStartsWith, IEndsWith} {
		for _, negate := range []bool{false, true} {
			for _, want := range words {
				f := Filter{Op: op, Negate: negate, Values: []any{want}}
				m := f.FoldedMatcher()
				if m == nil {
					t.Fatalf("op %v: no folded matcher", op)
				}
				for _, v := range words {
					if got := m(Fold(v)); got != f.Match(v) {
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

// Two texts are equal without case exactly when PostgreSQL's upper() makes
// them equal, character by character (Pigello's Django compares UPPER(x)
// with UPPER(y)): every character in Unicode folds to one representative
// of the characters with its upper case, and no two upper cases share one.
func TestFoldIsEqualityOfUpperCase(t *testing.T) {
	upperOf := map[rune]rune{}
	for r := rune(0); r <= unicode.MaxRune; r++ {
		f, u := foldRune(r), unicode.ToUpper(r)
		if prev, ok := upperOf[f]; ok && prev != u {
			t.Fatalf("U+%04X folds to U+%04X, as do characters of another upper case (U+%04X, U+%04X)", r, f, u, prev)
		}
		upperOf[f] = u
		if unicode.ToUpper(f) != u {
			t.Fatalf("U+%04X folds to U+%04X, whose upper case differs", r, f)
		}
	}
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"Yıldız", "YILDIZ", true},
		{"yildiz", "YILDIZ", true},
		{"İstanbul", "istanbul", false},
		{"İstanbul", "İSTANBUL", true},
		{"Σίσυφος", "ΣΊΣΥΦΟΣ", true},
		{"σίσυφοσ", "Σίσυφος", true},
		{"ſtest", "STEST", true},
		{"\u212aelvin", "kelvin", false},
		{"Straße", "STRAẞE", false},
		{"Straße", "STRASSE", false},
		{"Åberg", "åBERG", true},
		{"Zürich", "ZÜRİCH", false},
	} {
		if got := Fold(c.a) == Fold(c.b); got != c.same {
			t.Errorf("Fold(%q) == Fold(%q): %v, want %v", c.a, c.b, got, c.same)
		}
		if got := (Filter{Op: IExact, Values: []any{c.b}}).Match(c.a); got != c.same {
			t.Errorf("%q iexact %q: %v, want %v", c.a, c.b, got, c.same)
		}
	}
	if Fold("Anna-Lena Öberg") != "anna-lena öberg" {
		t.Errorf("Fold of a Swedish name: %q, want it lower-cased", Fold("Anna-Lena Öberg"))
	}
}
