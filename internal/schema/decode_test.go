package schema

import (
	"encoding/json"
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
