package personnummer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

type vectors struct {
	Valid []struct {
		Input     string `json:"input"`
		Canonical string `json:"canonical"`
	} `json:"valid"`
	Invalid []string `json:"invalid"`
}

func loadVectors(t testing.TB) vectors {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "personnummer.json"))
	if err != nil {
		t.Fatalf("reading test vectors: %v", err)
	}
	var v vectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decoding test vectors: %v", err)
	}
	if len(v.Valid) == 0 || len(v.Invalid) == 0 {
		t.Fatal("test vectors are empty")
	}
	return v
}

func TestParseValidVectors(t *testing.T) {
	for i, v := range loadVectors(t).Valid {
		n, err := Parse(v.Input)
		if err != nil {
			t.Errorf("valid vector %d rejected: %v", i, err)
			continue
		}
		if n.Canonical() != v.Canonical {
			t.Errorf("valid vector %d: canonical form differs from the expected one", i)
		}
	}
}

func TestParseInvalidVectors(t *testing.T) {
	for i, in := range loadVectors(t).Invalid {
		if _, err := Parse(in); err == nil {
			t.Errorf("invalid vector %d accepted", i)
		}
	}
}

// FuzzParse checks Parse against the contract's rules (docs/accounts-api.md
// section 5), restated independently below, on any input: it never panics;
// it accepts exactly what the rules accept, and fails with the rule the
// rules name first; what it accepts comes back as 12 ASCII digits that parse
// to themselves; and the three written forms of a number (no separator, '-',
// '+') parse to the same number. Failures name lengths and rules, never the
// input: a seed is an identity number, even if a published test one.
func FuzzParse(f *testing.F) {
	v := loadVectors(f)
	for _, x := range v.Valid {
		f.Add(x.Input)
		// Every written form of each valid vector, so the fuzzer starts from
		// accepted inputs of each shape.
		c := x.Canonical
		f.Add(c)
		f.Add(c[:8] + "-" + c[8:])
		f.Add(c[:8] + "+" + c[8:])
	}
	for _, x := range v.Invalid {
		f.Add(x)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		want, wantErr := contractCanonical(s)
		if err != wantErr {
			t.Fatalf("input of %d bytes: Parse says %v, the contract's rules say %v", len(s), err, wantErr)
		}
		if err != nil {
			if n != (Number{}) {
				t.Fatalf("input of %d bytes: rejected, yet a number came back", len(s))
			}
			return
		}
		c := n.Canonical()
		if !isASCIIDigits(c, 12) {
			t.Fatalf("input of %d bytes: canonical form is not 12 ASCII digits (%d bytes)", len(s), len(c))
		}
		if c != want {
			t.Fatalf("input of %d bytes: canonical form differs from the input's digits", len(s))
		}
		for i, form := range []string{c, c[:8] + "-" + c[8:], c[:8] + "+" + c[8:]} {
			again, err := Parse(form)
			if err != nil || again.Canonical() != c {
				t.Fatalf("input of %d bytes: written form %d of its canonical number does not parse back to it (%v)", len(s), i, err)
			}
		}
	})
}

// contractCanonical applies the rules of docs/accounts-api.md section 5 to s
// without the parser, so the fuzz target has an oracle of its own: it returns
// the 12-digit form of a valid s, or the error of the first rule s breaks,
// in the order the contract lists them.
func contractCanonical(s string) (string, error) {
	var digits string
	switch {
	case len(s) == 12:
		digits = s
	case len(s) == 13 && (s[8] == '-' || s[8] == '+'):
		digits = s[:8] + s[9:]
	default:
		return "", ErrFormat
	}
	if !isASCIIDigits(digits, 12) {
		return "", ErrFormat
	}
	var d [12]int
	for i := range d {
		d[i] = int(digits[i] - '0')
	}
	century := d[0]*10 + d[1]
	year := century*100 + d[2]*10 + d[3]
	month := d[4]*10 + d[5]
	day := d[6]*10 + d[7]
	if century != 18 && century != 19 && century != 20 {
		return "", ErrCentury
	}
	if day >= 61 && day <= 91 { // a coordination number: day + 60
		day -= 60
	}
	if month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) {
		return "", ErrDate
	}
	if d[8] == 0 && d[9] == 0 && d[10] == 0 {
		return "", ErrBirthNum
	}
	// Luhn over the last ten digits, read from the left: weights 2,1,2,1,...
	// and the digits of each product summed.
	sum := 0
	for i, x := range d[2:] {
		p := x * (2 - i%2)
		sum += p/10 + p%10
	}
	if sum%10 != 0 {
		return "", ErrCheckDigit
	}
	return digits, nil
}

// daysInMonth is the Gregorian calendar's, leap years included.
func daysInMonth(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

func isASCIIDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
