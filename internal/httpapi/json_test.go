package httpapi

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"accounts/internal/store"
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

// appendTime writes every instant as AppendFormat with store.TimeLayout
// does: random instants over the years it writes itself, the edges of
// each field, other zones (written in UTC) and the years it hands over.
func TestAppendTimeAsAppendFormat(t *testing.T) {
	stockholm := time.FixedZone("CET", 3600)
	cases := []time.Time{
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2026, 11, 30, 7, 5, 9, 1000, time.UTC),
		time.Date(2026, 1, 1, 0, 30, 0, 999, stockholm), // the day before, in UTC; under a microsecond
		time.Date(1999, 12, 31, 23, 59, 59, 123456789, time.UTC),
		time.Date(-1, 6, 1, 0, 0, 0, 0, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		{},
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		cases = append(cases, time.Unix(rng.Int64N(253402300800)-62135596800, rng.Int64N(1e9)))
	}
	for _, at := range cases {
		want := at.UTC().AppendFormat([]byte("x"), store.TimeLayout)
		if got := appendTime([]byte("x"), at); string(got) != string(want) {
			t.Errorf("%v: appendTime wrote %s, AppendFormat %s", at, got[1:], want[1:])
		}
	}
}

// The created_at of every object: appendTime against the AppendFormat it
// replaced (go test -run '^$' -bench AppendTime ./internal/httpapi).
func BenchmarkAppendTime(b *testing.B) {
	at := time.Date(2026, 11, 30, 7, 5, 9, 123456000, time.UTC)
	buf := make([]byte, 0, 64)
	b.Run("appendTime", func(b *testing.B) {
		for b.Loop() {
			buf = appendTime(buf[:0], at)
		}
	})
	b.Run("AppendFormat", func(b *testing.B) {
		for b.Loop() {
			buf = at.UTC().AppendFormat(buf[:0], store.TimeLayout)
		}
	})
}
