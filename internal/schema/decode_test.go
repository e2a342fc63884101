package schema

import (
	"encoding/json"
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
		"90.5": false,
		"-91":  false,
	} {
		v, msg := lat.Decode(json.RawMessage(lit))
		if got := msg == ""; got != ok {
			t.Errorf("latitude %s: accepted %v (value %v), want %v", lit, got, v, ok)
		}
	}
}
