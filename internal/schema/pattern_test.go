package schema

import (
	"math/rand/v2"
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

// EmailPattern, which the OpenAPI document publishes, accepts exactly the
// addresses validEmail does: the shapes of the rule's edges, and random
// strings of the characters that matter to it.
func TestEmailPatternAgreesWithValidEmail(t *testing.T) {
	re := regexp.MustCompile(EmailPattern)
	tried := []string{
		"a@b.se", "anna.svensson@example.se", "o'brien@example.se", "x_y-z@my-host.example.se",
		"anna@xn--exmple-cua.se", "a@b.c", "a@b", "@b.se", "a@", "a..b@c.se", ".a@b.se", "a.@b.se",
		"a@-b.se", "a@b-.se", "a@b..se", "a@.b.se", "a@b.se.", "a@b.s-", "a@b.-s", "a@b.1s", "a@1.23",
		"a(b)@c.se", `"a"@b.se`, "<a@b.se>", "a@[192.0.2.1]", "å@b.se", "a@bå.se", "a b@c.se", "a@b@c.se",
		"a@" + strings.Repeat("b", 63) + ".se", "a@" + strings.Repeat("b", 64) + ".se",
		"a@b." + strings.Repeat("c", 63), "a@b." + strings.Repeat("c", 64),
	}
	// Random addresses of the rule's shape, local@label.label..., from
	// characters it allows and some it does not.
	r := rand.New(rand.NewPCG(1, 2))
	word := func(alphabet string, n int) string {
		chars := []rune(alphabet)
		b := make([]rune, n)
		for i := range b {
			b[i] = chars[r.IntN(len(chars))]
		}
		return string(b)
	}
	for range 20000 {
		labels := make([]string, 1+r.IntN(3))
		for i := range labels {
			labels[i] = word("aZ09-a-z_å", r.IntN(5))
		}
		tried = append(tried, word("aZ09.-_!`'{}~å (\"@", r.IntN(6))+"@"+strings.Join(labels, "."))
	}
	valid := 0
	for _, s := range tried {
		got, want := re.MatchString(s), validEmail(s)
		if got != want {
			t.Errorf("%q: the pattern says %v, validEmail %v", s, got, want)
		}
		if want {
			valid++
		}
	}
	t.Logf("%d of %d strings are valid addresses", valid, len(tried))
	if valid < 10 {
		t.Errorf("only %d of the strings tried are valid: the test proves little", valid)
	}
}
