package searchindex

import (
	"bytes"
	"maps"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"accounts/internal/query"
)

var testBits = Bits{Exact: 20, Prefix: 16, Gram: 16, LongGram: 16}

func testKey(seed byte) *Key { return NewKey(bytes.Repeat([]byte{seed}, 32), testBits) }

// alphabet mixes cases, Swedish letters, characters whose fold is another
// width in UTF-8 (ſ, 2 bytes, folds to s; ı to i) or another character
// than their lower case (ς to σ; İ, ẞ and K, the Kelvin sign, to
// themselves), and characters no case changes.
var alphabet = []rune("aAbBeEkKrRsSåÅäÄöÖéÉüÜ -'.İıKΣσςſßẞµ1@")

func randomString(r *rand.Rand, maxRunes int) string {
	n := r.IntN(maxRunes + 1)
	var sb strings.Builder
	for range n {
		sb.WriteRune(alphabet[r.IntN(len(alphabet))])
	}
	return sb.String()
}

// queryOf picks a query for v: usually a piece of it in random case, at
// times a random string.
func queryOf(r *rand.Rand, v string) string {
	rs := []rune(v)
	if len(rs) == 0 || r.IntN(4) == 0 {
		return randomString(r, 6)
	}
	i := r.IntN(len(rs))
	j := i + r.IntN(len(rs)-i) + 1
	piece := rs[i:j]
	if r.IntN(2) == 0 {
		piece = rs[:j] // a prefix
	}
	out := make([]rune, len(piece))
	for k, c := range piece {
		switch r.IntN(3) {
		case 0:
			c = []rune(strings.ToUpper(string(c)))[0]
		case 1:
			c = []rune(strings.ToLower(string(c)))[0]
		}
		out[k] = c
	}
	return string(out)
}

// ops pairs each operator of internal/query with the Op that narrows it.
var ops = map[query.Op]Op{
	query.Exact: Equal, query.IExact: Equal,
	query.StartsWith: StartsWith, query.IStartsWith: StartsWith,
	query.Contains: Contains, query.IContains: Contains, query.EndsWith: Contains, query.IEndsWith: Contains,
}

// TestNoMatchMissed is the index's promise: a value that the service's
// matching (query.Filter.Match) says matches a condition holds every token
// Query gives for it, so narrowing by tokens never loses a row.
func TestNoMatchMissed(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	k := testKey(7)
	matched := map[query.Op]int{}
	for range 60_000 {
		v := randomString(r, 12)
		for _, qop := range checkNoMatchMissed(t, k, v, queryOf(r, v)) {
			matched[qop]++
		}
	}
	for qop := range ops {
		if matched[qop] < 1000 {
			t.Errorf("%s matched only %d times: the generator does not exercise it", qop, matched[qop])
		}
	}
}

// checkNoMatchMissed fails t when v matches q under an operator but lacks
// a token of Query for it, and returns the operators v matched.
func checkNoMatchMissed(t *testing.T, k *Key, v, q string) []query.Op {
	t.Helper()
	held := heldTokens(k, v)
	var matched []query.Op
	for qop, op := range ops {
		if !(query.Filter{Op: qop, Values: []any{q}}).Match(v) {
			continue
		}
		matched = append(matched, qop)
		tokens, ok := k.Query(op, q)
		if !ok {
			continue
		}
		for _, tok := range tokens {
			if !held[tok] {
				t.Fatalf("%s: a matching value lacks a token of the query (value %d runes, query %d runes)",
					qop, utf8.RuneCountInString(v), utf8.RuneCountInString(q))
			}
		}
	}
	return matched
}

// heldTokens is the set of v's tokens.
func heldTokens(k *Key, v string) map[Token]bool {
	held := map[Token]bool{}
	for _, tok := range k.Value(v) {
		held[tok] = true
	}
	return held
}

// TestQueriesNarrow: a value that does not match is, for most pairs, told
// apart by its tokens, so the index does narrow.
func TestQueriesNarrow(t *testing.T) {
	k := testKey(7)
	holdsAll := func(v, q string, op Op) bool {
		tokens, ok := k.Query(op, q)
		if !ok {
			t.Fatalf("query of %d runes not narrowed", utf8.RuneCountInString(q))
		}
		h := heldTokens(k, v)
		for _, tok := range tokens {
			if !h[tok] {
				return false
			}
		}
		return true
	}
	for _, tc := range []struct {
		v, q string
		op   Op
		want bool
	}{
		{"Berglund", "BERGLUND", Equal, true},
		{"Berglund", "Berglun", Equal, false},
		{"Berglund", "bergl", StartsWith, true}, // narrowed by its first four
		{"Berglund", "lund", StartsWith, false},
		{"Åberg", "BERG", Contains, true},
		{"Åberg", "berk", Contains, false},
		{"Sjöström", "ÖSTR", Contains, true},
		{"Sjöström", "ostr", Contains, false},
		{"Lindqvist", "DQVIST", Contains, true},
		{"Lindqvist", "dqvsit", Contains, false},
		{"Lindqvist", "lindqv", StartsWith, true},
		{"Lindqvist", "lindvq", StartsWith, false},
	} {
		if got := holdsAll(tc.v, tc.q, tc.op); got != tc.want {
			t.Errorf("value %q, query %q (op %d): holds every token = %v, want %v", tc.v, tc.q, tc.op, got, tc.want)
		}
	}
}

func TestShortQueriesAreNotNarrowed(t *testing.T) {
	k := testKey(7)
	for _, tc := range []struct {
		op   Op
		q    string
		want bool
	}{
		{Contains, "", false}, {Contains, "ab", false}, {Contains, "åä", false}, {Contains, "abc", true},
		{StartsWith, "", false}, {StartsWith, "a", true}, {Equal, "", false}, {Equal, "a", true},
	} {
		if _, ok := k.Query(tc.op, tc.q); ok != tc.want {
			t.Errorf("Query(%d, %q) narrows = %v, want %v", tc.op, tc.q, ok, tc.want)
		}
	}
}

// TestTokensAreKeyedAndTruncated: another field's key gives other tokens,
// the same key the same ones, and every token fits its kind's bits.
func TestTokensAreKeyedAndTruncated(t *testing.T) {
	a, b := testKey(7), testKey(8)
	va, vb := a.Value("Lindqvist"), b.Value("Lindqvist")
	if len(va) != len(vb) {
		t.Fatalf("token counts differ: %d and %d", len(va), len(vb))
	}
	same := 0
	for i := range va {
		if va[i] == vb[i] {
			same++
		}
	}
	if same > len(va)/2 {
		t.Errorf("%d of %d tokens equal under different keys", same, len(va))
	}
	again := testKey(7).Value("Lindqvist")
	for i := range va {
		if va[i] != again[i] {
			t.Fatalf("token %d differs between two computations under one key", i)
		}
	}
	limit := map[Kind]uint32{Exact: 1 << testBits.Exact, Prefix: 1 << testBits.Prefix, Gram: 1 << testBits.Gram, LongGram: 1 << testBits.LongGram}
	r := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		for _, tok := range a.Value(randomString(r, 10)) {
			if tok.Value >= limit[tok.Kind] {
				t.Fatalf("a kind %d token has more bits than its kind's", tok.Kind)
			}
		}
	}
	// "Lindqvist": one exact token, four prefixes, seven grams, five
	// long grams.
	kinds := map[Kind]int{}
	for _, tok := range va {
		kinds[tok.Kind]++
	}
	if kinds[Exact] != 1 || kinds[Prefix] != 4 || kinds[Gram] > 7 || kinds[Gram] < 6 || kinds[LongGram] > 5 || kinds[LongGram] < 4 {
		t.Errorf("kinds of tokens %v, want 1 exact, 4 prefixes, 7 grams, 5 long grams (fewer only where two collide)", kinds)
	}
}

// TestLongQueriesUseLongGrams: a contains query narrows by long grams once
// it is long enough to hold one, and by as few as cover it; a startswith
// query by its prefix and, past it, by long grams.
func TestLongQueriesUseLongGrams(t *testing.T) {
	k := testKey(7)
	for _, tc := range []struct {
		op    Op
		q     string
		kinds map[Kind]int
	}{
		{Contains, "abc", map[Kind]int{Gram: 1}},
		{Contains, "abcd", map[Kind]int{Gram: 2}},
		{Contains, "abcde", map[Kind]int{LongGram: 1}},
		{Contains, "abcdefghij", map[Kind]int{LongGram: 2}},
		{Contains, "abcdefghijk", map[Kind]int{LongGram: 3}},
		{StartsWith, "abcd", map[Kind]int{Prefix: 1}},
		{StartsWith, "abcdefghi", map[Kind]int{Prefix: 1, LongGram: 2}},
	} {
		tokens, ok := k.Query(tc.op, tc.q)
		if !ok {
			t.Fatalf("Query(%d, %q) does not narrow", tc.op, tc.q)
		}
		kinds := map[Kind]int{}
		for _, tok := range tokens {
			kinds[tok.Kind]++
		}
		if !maps.Equal(kinds, tc.kinds) {
			t.Errorf("Query(%d, %q): tokens by kind %v, want %v", tc.op, tc.q, kinds, tc.kinds)
		}
	}
}

func TestNewKeyRefusesBadBits(t *testing.T) {
	for _, bits := range []Bits{{0, 16, 16, 16}, {16, 33, 16, 16}, {16, 16, 0, 16}, {16, 16, 16, 0}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewKey accepted bits %v", bits)
				}
			}()
			NewKey(make([]byte, 32), bits)
		}()
	}
}

// FuzzNoMatchMissed is TestNoMatchMissed over any valid UTF-8 strings the
// fuzzer finds: values and queries are UTF-8 by the time they reach the
// index (anything else is refused with a 400 as it is decoded).
func FuzzNoMatchMissed(f *testing.F) {
	f.Add("Åberg", "BERG")
	f.Add("Sjöström", "ÖSTR")
	f.Add("İzmir", "izm")
	f.Add("KELVIN", "kel")
	k := testKey(7)
	f.Fuzz(func(t *testing.T, v, q string) {
		if !utf8.ValidString(v) || !utf8.ValidString(q) {
			return
		}
		checkNoMatchMissed(t, k, v, q)
	})
}

// An encoded token keeps its kind, whatever its field and value.
func TestKindOfEncodedToken(t *testing.T) {
	for _, kind := range []Kind{Exact, Prefix, Gram, LongGram} {
		for _, field := range []int{0, 1, 1<<FieldBits - 1} {
			for _, v := range []uint32{0, 1, 1<<32 - 1} {
				if got := KindOf(Token{Kind: kind, Value: v}.Encode(field)); got != kind {
					t.Errorf("KindOf(Encode) = %d, want %d (field %d, value %d)", got, kind, field, v)
				}
			}
		}
	}
}
