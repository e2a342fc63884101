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
