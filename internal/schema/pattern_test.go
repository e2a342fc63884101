package schema

import (
	"regexp"
	"strings"
	"testing"
)

// ecmaEscape is a \uXXXX escape of ECMA-262, which Go writes \x{XXXX}.
var ecmaEscape = regexp.MustCompile(`\\u([0-9A-Fa-f]{4})`)

// characters are the characters the patterns are tried on: every one of
// Latin-1, Latin Extended and general punctuation, where the patterns'
// edges lie, and a stride through the rest of the basic plane.
var characters = func() []rune {
	var out []rune
	for r := rune(0x20); r <= 0xFFFF; r++ {
		edge := r < 0x250 || (r >= 0x2000 && r < 0x2070)
		if (edge || r%97 == 0) && (r < 0xD800 || r > 0xDFFF) {
			out = append(out, r)
		}
	}
	return out
}()

// The OpenAPI document publishes each field's Pattern as the rule its Check
// enforces: a client that trusts the pattern must be refused nothing and
// accepted nothing more. The characters above, alone and around digits,
// and strings of the patterns' own shapes, get the same verdict from both.
func TestPatternsAgreeWithChecks(t *testing.T) {
	checked := 0
	for _, res := range New().Resources {
		for _, f := range res.Fields {
			if (f.Check == nil) != (f.Pattern == "" && f.Allowed == "") {
				t.Errorf("%s.%s: a Check without a Pattern or Allowed, or the reverse", res.Name, f.Name)
				continue
			}
			if f.Pattern == "" {
				continue
			}
			checked++
			re, err := regexp.Compile(ecmaEscape.ReplaceAllString(f.Pattern, `\x{$1}`))
			if err != nil {
				t.Errorf("%s.%s: pattern does not compile: %v", res.Name, f.Name, err)
				continue
			}
			samples := []string{"12", "12A", "12-14b", "1-", "-1", "123 45", "SE-123", "ab", "abcdefghijk", "c/o Ö. Ås (2)", "O’Brien's 4:e"}
			for _, r := range characters {
				samples = append(samples, string(r), "1"+string(r), "123"+string(r)+"5")
			}
			disagree := 0
			for _, s := range samples {
				if (f.Check(s) == "") != re.MatchString(s) {
					disagree++
				}
			}
			if disagree > 0 {
				t.Errorf("%s.%s: pattern and check disagree on %d samples", res.Name, f.Name, disagree)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no field has a pattern: the test proves nothing")
	}
}

// validEmail (EmailPattern, which the OpenAPI document publishes) at the
// edges of its rule: dot-atoms, labels and their lengths, and what looser
// validators take.
func TestValidEmailEdges(t *testing.T) {
	for s, want := range map[string]bool{
		"a@b.se": true, "anna.svensson@example.se": true, "o'brien@example.se": true,
		"x_y-z@my-host.example.se": true, "anna@xn--exmple-cua.se": true, "a+b@1.23": true,
		"a@" + strings.Repeat("b", 63) + ".se": true, "a@b." + strings.Repeat("c", 63): true,
		"a@b.c": false, "a@b": false, "@b.se": false, "a@": false, "a..b@c.se": false, ".a@b.se": false,
		"a.@b.se": false, "a@-b.se": false, "a@b-.se": false, "a@b..se": false, "a@.b.se": false,
		"a@b.se.": false, "a@b.s-": false, "a@b.-s": false, "a(b)@c.se": false, `"a"@b.se`: false,
		"<a@b.se>": false, "a@[192.0.2.1]": false, "å@b.se": false, "a@bå.se": false, "a b@c.se": false,
		"a@b@c.se": false, "a@" + strings.Repeat("b", 64) + ".se": false, "a@b." + strings.Repeat("c", 64): false,
		"a@b.se\n": false,
	} {
		if got := validEmail(s); got != want {
			t.Errorf("validEmail(%q) = %v, want %v", s, got, want)
		}
	}
}
