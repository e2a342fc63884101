package httpapi

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// appendString writes every string exactly as json.Marshal does: each
// byte alone, each rune JSON or HTML escapes, invalid UTF-8, and random
// mixes of them with ordinary text.
func TestAppendStringAsMarshal(t *testing.T) {
	var cases []string
	for c := range 256 {
		cases = append(cases, string([]byte{byte(c)}), "a"+string([]byte{byte(c)})+"b")
	}
	pieces := []string{"", "Åberg", "Sjöström", "tolvan@example.se", "<script>", "a&b", `"q"`, `\`, "\u2028", "\u2029",
		"\x00", "\x1f", "\x7f", "\xff", "\xe2\x80", "\xed\xa0\x80", "\U0001F600", "\ufffd", "\t\n\r\b\f"}
	cases = append(cases, pieces...)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		s := ""
		for range rng.IntN(6) {
			s += pieces[rng.IntN(len(pieces))]
		}
		cases = append(cases, s)
	}
	for _, s := range cases {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Errorf("%q: appendString wrote %s, json.Marshal %s", s, got[1:], want)
		}
	}
}
