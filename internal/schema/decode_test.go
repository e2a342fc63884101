package schema

import (
	"encoding/json"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
)

// A number is held to its field's bounds as written, not as rounded to a
// float64: 90.000000000000000001 is past a maximum of 90, though its
// float64 is 90. What rounds inside the bounds, or onto a bound it is, is
// the number.
func TestNumberBoundsExact(t *testing.T) {
	lat := &Field{Name: "latitude", Type: Number, Min: -90, Max: 90}
	for lit, ok := range map[string]bool{
		"90":                      true,
		"90.0":                    true,
		"9e1":                     true,
		"900e-1":                  true,
		"-90":                     true,
		"-90.000":                 true,
		"89.99999999999999999999": true,
		"0.1":                     true,
		"-0":                      true,
		"90.000000000000000001":   false,
		"90.0000000000001":        false,
		"-90.000000000000001":     false,
		"9.0000000000000000001e1": false,
		"90" + "." + strings.Repeat("0", 80) + "1": false,
		// However long the literal: on the bound, within it, past it.
		"90." + strings.Repeat("0", 100000):                         true,
		"-90." + strings.Repeat("0", 61):                            true,
		"89." + strings.Repeat("9", 70):                             true,
		"-89." + strings.Repeat("9", 100000):                        true,
		"90" + strings.Repeat("0", 59) + "e-59":                     true,
		"0." + strings.Repeat("0", 70) + "9e72":                     true,
		"0." + strings.Repeat("0", 70) + "90000000000000000001e72":  false,
		"-90." + strings.Repeat("0", 100000) + "1":                  false,
		"90e-00000000000000000000000000000000000000000000000000":    true,
		"90.000000000000000001e00000000000000000000000000000000000": false,
		"90.5": false,
		"-91":  false,
		// A whole part of more than 800 digits: strconv alone lost where
		// its point was (1000, read as 1e-198, passed a maximum of 90).
		"1" + strings.Repeat("0", 1000) + "e-997":  false,
		"-5" + strings.Repeat("0", 900) + "e-898":  false,
		"9" + strings.Repeat("0", 1000) + "e-999":  true,
		"-9" + strings.Repeat("0", 1000) + "e-999": true,
	} {
		v, msg := lat.Decode(json.RawMessage(lit))
		if got := msg == ""; got != ok {
			t.Errorf("latitude %s: accepted %v (value %v), want %v", lit, got, v, ok)
		}
	}
}

// compareDecimal agrees with big.Rat's exact comparison on literals of
// every shape JSON allows: signs, leading and trailing zeros, fractions,
// exponents of either sign.
func TestCompareDecimalAgreesWithRat(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	digits := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = "0000123459"[rng.IntN(10)]
		}
		return string(b)
	}
	literal := func() string {
		lit := ""
		if rng.IntN(2) == 0 {
			lit = "-"
		}
		whole := strings.TrimLeft(digits(1+rng.IntN(4)), "0")
		if whole == "" {
			whole = "0"
		}
		lit += whole
		if rng.IntN(2) == 0 {
			lit += "." + digits(1+rng.IntN(4))
		}
		if rng.IntN(2) == 0 {
			lit += []string{"e", "E", "e+", "e-"}[rng.IntN(4)] + digits(1+rng.IntN(2))
		}
		return lit
	}
	for range 20000 {
		a, b := literal(), literal()
		ra, _ := new(big.Rat).SetString(a)
		rb, _ := new(big.Rat).SetString(b)
		if got, want := compareDecimal(a, b), ra.Cmp(rb); got != want {
			t.Fatalf("compareDecimal(%s, %s) = %d, want %d", a, b, got, want)
		}
	}
}

// ParseNumber gives the float64 nearest to the number written, as big.Rat
// does, whatever the literal's length: strconv alone keeps 800 digits, and
// a whole part longer than that came out wrong by as many powers of ten as
// digits it dropped.
func TestParseNumberExact(t *testing.T) {
	zeros := func(n int) string { return strings.Repeat("0", n) }
	for _, lit := range []string{
		"90", "-0.5", "1e-300", "12.5e3",
		"9" + zeros(1000) + "e-999",
		"1" + zeros(5000) + ".5e-5000",
		"-123" + zeros(799) + "e-800",
		"123" + zeros(800) + "e-801",
		"0." + zeros(1000) + "9e1002",
		"1." + zeros(1000) + "1",
		"4" + zeros(2000) + "e-1700",
		"17976931348623157" + zeros(2000) + "e-1709",
	} {
		got, ok := ParseNumber(lit)
		r, _ := new(big.Rat).SetString(lit)
		want, _ := r.Float64()
		if !ok || got != want {
			t.Errorf("ParseNumber of a literal of %d characters = %v, %v; want %v", len(lit), got, ok, want)
		}
	}
	for _, lit := range []string{"1e400", "1" + zeros(2000) + "e-1600", "1e-400", "1" + zeros(1000) + "e-1400"} {
		if got, ok := ParseNumber(lit); ok {
			t.Errorf("ParseNumber of a literal of %d characters beyond a float64 = %v, want refused", len(lit), got)
		}
	}
	if got, ok := ParseNumber("-0"); !ok || got != 0 || !math.Signbit(got) {
		t.Errorf(`ParseNumber("-0") = %v, %v; want -0`, got, ok)
	}
}
