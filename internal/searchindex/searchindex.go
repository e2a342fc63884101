// Package searchindex computes the keyed tokens that let the database find
// the candidate rows of a condition on an encrypted field without seeing
// the field's value (issue 12; docs/design.md section 5): a blind index in
// the manner of CipherSweet, of three kinds per field.
//
//   - Exact: one token of the whole value, case-folded, for exact, iexact
//     and in.
//   - Prefix: a token of each of the value's first 1..PrefixRunes
//     characters, for startswith and istartswith.
//   - Gram: a token of each of the value's distinct GramRunes-character
//     substrings, for contains, icontains, endswith and iendswith of
//     fewer than LongGramRunes characters: every gram of a query must be
//     among the value's.
//   - LongGram: the same of the value's LongGramRunes-character
//     substrings, for those queries when they are longer, and for the
//     rest of a startswith query past its prefix token. Each short gram
//     is held by many rows of a large customer (a syllable of a name, a
//     group of digits of a phone number), so the lists a long query
//     intersects would grow with the customer; a long gram's list stays
//     short.
//
// A token is a keyed hash (HMAC-SHA-256 under a key of one customer's
// field) truncated to a few bits, so that many values share each token:
// the database holds candidates, never answers, and every candidate is
// confirmed after decryption. Tokens are computed over the value's
// query.Fold form, the form every case-insensitive operator of
// internal/query compares, and query.Fold maps rune by rune; so a value
// that matches a condition holds every token of the condition (no match
// is ever missed), whatever the case of either side.
package searchindex

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"slices"
	"unicode/utf8"

	"accounts/internal/query"
)

// Kind is what a token stands for.
type Kind uint8

// The kinds of token.
const (
	Exact Kind = iota + 1
	Prefix
	Gram
	LongGram
)

// Format is the version of the tokens' definition: their kinds, lengths,
// encoding, sizes (records.searchBits) and case fold (format 3: query.Fold,
// PostgreSQL's upper(), where format 2 lower-cased). Tokens of different formats
// can't be compared, so the column that holds them is named with it
// (sqlbuild.TokensColumn), and a change renames the column: a process of
// an earlier format then fails to write instead of writing tokens that
// this one's lookups would not find.
const Format = 3

// PrefixRunes is the longest prefix with a token of its own: a longer
// startswith query narrows by its first PrefixRunes characters and by
// its grams.
const PrefixRunes = 4

// GramRunes is the length of the substrings contains queries narrow by; a
// shorter query can't be narrowed (Query reports it).
const GramRunes = 3

// LongGramRunes is the length of the substrings queries of that many
// characters or more narrow by.
const LongGramRunes = 5

// Token is one token of a value or a query: its kind and its truncated
// keyed hash.
type Token struct {
	Kind  Kind
	Value uint32
}

// Bits are the sizes tokens are truncated to, by kind: the fewer, the more
// values share each token (less is revealed; more candidates to confirm).
type Bits struct {
	Exact, Prefix, Gram, LongGram uint
}

// Key computes the tokens of one field of one customer. It is not safe for
// concurrent use (it reuses its hash).
type Key struct {
	mac  hash.Hash
	bits Bits
	buf  []byte
}

// NewKey returns the Key for a field from its 32-byte key, which must be
// the field's own (derived per customer and field, apart from the data
// keys), with tokens truncated to bits (each 1..32).
func NewKey(key []byte, bits Bits) *Key {
	for _, b := range []uint{bits.Exact, bits.Prefix, bits.Gram, bits.LongGram} {
		if b < 1 || b > 32 {
			panic("searchindex: token bits must be 1..32")
		}
	}
	return &Key{mac: hmac.New(sha256.New, key), bits: bits}
}

// token is the token of kind for s, a folded string or a part of one.
func (k *Key) token(kind Kind, s string) Token {
	k.mac.Reset()
	k.buf = append(k.buf[:0], byte(kind))
	k.buf = append(k.buf, s...)
	k.mac.Write(k.buf)
	k.buf = k.mac.Sum(k.buf[:0])
	var bits uint
	switch kind {
	case Exact:
		bits = k.bits.Exact
	case Prefix:
		bits = k.bits.Prefix
	case Gram:
		bits = k.bits.Gram
	default:
		bits = k.bits.LongGram
	}
	return Token{Kind: kind, Value: binary.BigEndian.Uint32(k.buf) >> (32 - bits)}
}

// Value returns the distinct tokens of a stored value, in kind order.
func (k *Key) Value(v string) []Token {
	f := query.Fold(v)
	tokens := []Token{k.token(Exact, f)}
	ends := runeEnds(f)
	for n := 1; n <= min(PrefixRunes, len(ends)); n++ {
		tokens = append(tokens, k.token(Prefix, f[:ends[n-1]]))
	}
	for _, g := range grams(f, ends, GramRunes) {
		tokens = append(tokens, k.token(Gram, g))
	}
	for _, g := range grams(f, ends, LongGramRunes) {
		tokens = append(tokens, k.token(LongGram, g))
	}
	return distinct(tokens)
}

// Op is a condition's kind, as Query takes it.
type Op uint8

// The conditions Query narrows. Each stands for its case-sensitive and
// case-insensitive forms alike: the tokens are of folded values, and a
// case-sensitive match is a case-insensitive one too.
const (
	Equal      Op = iota + 1 // exact, iexact, and each value of in
	StartsWith               // startswith, istartswith
	Contains                 // contains, icontains, endswith, iendswith
)

// Query returns the tokens every value matching the condition holds, and
// false when none narrow it: a query too short to hold a gram, or empty.
func (k *Key) Query(op Op, q string) ([]Token, bool) {
	f := query.Fold(q)
	if f == "" {
		return nil, false
	}
	ends := runeEnds(f)
	switch op {
	case Equal:
		return []Token{k.token(Exact, f)}, true
	case StartsWith:
		// A value starting with q holds q's prefix token and every gram of
		// q: the grams narrow a query longer than PrefixRunes, whose
		// prefix token alone many values share.
		tokens := []Token{k.token(Prefix, f[:ends[min(PrefixRunes, len(ends))-1]])}
		if len(ends) > PrefixRunes {
			tokens = append(tokens, k.gramTokens(f, ends)...)
		}
		return distinct(tokens), true
	case Contains:
		tokens := k.gramTokens(f, ends)
		if len(tokens) == 0 {
			return nil, false
		}
		return distinct(tokens), true
	}
	return nil, false
}

// gramTokens are the tokens of q's covering grams, long ones when q is
// long enough to hold one (they narrow far more), else short ones; none
// when q is shorter than a gram.
func (k *Key) gramTokens(q string, ends []int) []Token {
	kind, n := Gram, GramRunes
	if len(ends) >= LongGramRunes {
		kind, n = LongGram, LongGramRunes
	}
	gs := covering(grams(q, ends, n), n)
	tokens := make([]Token, len(gs))
	for i, g := range gs {
		tokens[i] = k.token(kind, g)
	}
	return tokens
}

// runeEnds returns the byte offset after each rune of s.
func runeEnds(s string) []int {
	ends := make([]int, 0, len(s))
	for i := 0; i < len(s); {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		ends = append(ends, i)
	}
	return ends
}

// grams returns s's substrings of n runes (none when s is shorter), ends
// being runeEnds(s).
func grams(s string, ends []int, n int) []string {
	var gs []string
	for i := n - 1; i < len(ends); i++ {
		start := 0
		if i >= n {
			start = ends[i-n]
		}
		gs = append(gs, s[start:ends[i]])
	}
	return gs
}

// covering returns the grams of n runes, in order, that start every n
// characters, and the last: together they cover every character of the
// query, and a value holding them all is as likely a match as one holding
// every gram, while the database intersects an n-th as many token lists.
func covering(gs []string, n int) []string {
	var out []string
	for i := 0; i < len(gs); i += n {
		out = append(out, gs[i])
	}
	if last := len(gs) - 1; last > 0 && last%n != 0 {
		out = append(out, gs[last])
	}
	return out
}

// distinct sorts tokens and drops repeats.
func distinct(tokens []Token) []Token {
	slices.SortFunc(tokens, func(a, b Token) int {
		if a.Kind != b.Kind {
			return int(a.Kind) - int(b.Kind)
		}
		switch {
		case a.Value < b.Value:
			return -1
		case a.Value > b.Value:
			return 1
		}
		return 0
	})
	return slices.Compact(tokens)
}

// kindBits is how many bits of an encoded token name its kind.
const kindBits = 3

// KindOf is the kind of an encoded token (see Encode).
func KindOf(encoded int64) Kind { return Kind(encoded >> 32 & (1<<kindBits - 1)) }

// FieldBits is how many bits of an encoded token name its field: a row's
// tokens of all its fields are kept together, and a token of one field
// must not be taken for another's.
const FieldBits = 8

// Encode packs a token of field number field (0 ≤ field < 1<<FieldBits)
// into one non-negative integer: the field, the kind, then the value.
func (t Token) Encode(field int) int64 {
	if field < 0 || field >= 1<<FieldBits {
		panic("searchindex: field number out of range")
	}
	return int64(field)<<(32+kindBits) | int64(t.Kind)<<32 | int64(t.Value)
}
