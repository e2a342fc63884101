// Package dialect is what differs between the SQL of the two engines, and
// nothing else: how a placeholder is written, which LIMIT means none, how
// a time and a list of strings are bound, and the column type names (for
// checking the live tables against the declarations). Every statement is
// written once, with ? placeholders, in the text both engines take.
//
// It imports nothing of the service, so that every package writing SQL
// for both engines (the stores, the key store, tests that open a database
// directly) shares the one placeholder rewrite. Add to it only what a
// second engine forces (ardanlabs/service business/sdk/sqldb/dialect).
package dialect

import (
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// TimeLayout is how a time is written as text: UTC, fixed width, so that
// it sorts as text, with the microsecond precision the API returns. SQLite
// stores times in it; PostgreSQL's timestamptz keeps the same precision.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// Kind is what a column holds, whatever the engine calls its type.
type Kind int

// The kinds of the service's columns.
const (
	Text   Kind = iota // string
	Bool               // bool
	Bytes              // []byte
	Time               // time.Time
	Int                // int64
	Tokens             // []int64: a row's search tokens
	kinds
)

// Dialect is one engine's spelling. The zero value is not a dialect: use
// SQLite or Postgres.
type Dialect struct {
	name string
	// numbered placeholders are $1, $2, ...; otherwise ?.
	numbered bool
	// textTimes binds a time as text in TimeLayout; otherwise as a
	// time.Time truncated to the microsecond (what timestamptz keeps).
	textTimes bool
	// jsonLists binds a list of strings as a JSON array in text;
	// otherwise as a []string (a text[] column).
	jsonLists bool
	// ftsTokens keeps search tokens as text, indexed by an FTS5 table
	// beside the rows and found through an integer row number (SQLite);
	// otherwise as an array column with a GIN index (PostgreSQL).
	ftsTokens bool
	// rowLocks takes row locks in a write transaction's reads (FOR NO
	// KEY UPDATE, FOR UPDATE) and advisory locks: the engine runs write
	// transactions side by side (PostgreSQL); otherwise one at a time
	// (SQLite).
	rowLocks bool
	// noLimit is the LIMIT operand that sets no limit (OFFSET needs a
	// LIMIT before it on SQLite).
	noLimit any
	types   [kinds]string
	// columns selects a table's columns: name, type, and whether it is
	// NOT NULL; its one placeholder is the table name.
	columns string
}

// SQLite is the dialect of the embedded store (and the SQLite key store).
// Bools need no encoding: the driver binds them as 0 and 1, and the
// tables' CHECK constraints accept nothing else.
var SQLite = Dialect{
	name:      "sqlite",
	textTimes: true,
	jsonLists: true,
	ftsTokens: true,
	noLimit:   int64(-1),
	types:     [kinds]string{Text: "text", Bool: "integer", Bytes: "blob", Time: "text", Int: "integer", Tokens: "integer"},
	columns:   `SELECT name, lower(type), "notnull" <> 0 FROM pragma_table_info(?) ORDER BY cid`,
}

// Postgres is the dialect of the server store (and a PostgreSQL key store).
var Postgres = Dialect{
	name:     "postgres",
	numbered: true,
	rowLocks: true,
	noLimit:  nil, // LIMIT NULL is no limit
	types:    [kinds]string{Text: "text", Bool: "boolean", Bytes: "bytea", Time: "timestamp with time zone", Int: "bigint", Tokens: "ARRAY"},
	columns: Numbered(`SELECT column_name::text, data_type::text, is_nullable = 'NO' FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position`),
}

func (d Dialect) String() string { return d.name }

// RowLocks reports whether a write transaction's reads must lock the rows
// they read (store.Lock): the engine runs write transactions side by side.
func (d Dialect) RowLocks() bool { return d.rowLocks }

// Bind writes q's ? placeholders in the dialect's form. Statements hold no
// ? other than placeholders (no string literal, no jsonb operator).
func (d Dialect) Bind(q string) string {
	if !d.numbered {
		return q
	}
	return Numbered(q)
}

// Numbered rewrites ? placeholders as $1, $2, ... (pocketbase/dbx
// PgsqlBuilder.GeneratePlaceholder).
func Numbered(q string) string {
	n := strings.Count(q, "?")
	if n == 0 {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 2*n)
	i := 0
	for {
		j := strings.IndexByte(q, '?')
		if j < 0 {
			b.WriteString(q)
			return b.String()
		}
		i++
		b.WriteString(q[:j])
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(i))
		q = q[j+1:]
	}
}

// Time is t as the dialect binds it: both forms keep microseconds, in UTC.
func (d Dialect) Time(t time.Time) any {
	if d.textTimes {
		return t.UTC().Format(TimeLayout)
	}
	return t.UTC().Truncate(time.Microsecond)
}

// List is a list of strings as the dialect binds it; an empty list is
// stored as empty, never as null.
func (d Dialect) List(l []string) (any, error) {
	if l == nil {
		l = []string{}
	}
	if !d.jsonLists {
		return l, nil
	}
	b, err := json.Marshal(l)
	return string(b), err
}

// BytesIn is the condition that column (of Kind Bytes) is one of a list of
// values bound as one parameter, BytesList's: a blind index lookup's list
// holds a hash of each value under every index key held, in two forms,
// more than the 32,766 parameters SQLite takes in one statement if each
// were a parameter of its own.
func (d Dialect) BytesIn(column string) string {
	if d.jsonLists {
		return column + " IN (SELECT unhex(value) FROM json_each(?))"
	}
	return column + " = ANY(?::bytea[])"
}

// BytesList is values as BytesIn binds them: a JSON array of their hex
// digits, or a bytea[].
func (d Dialect) BytesList(values [][]byte) any {
	if !d.jsonLists {
		return values
	}
	b := make([]byte, 0, 2+len(values)*67)
	b = append(b, '[')
	for i, v := range values {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = hex.AppendEncode(b, v)
		b = append(b, '"')
	}
	return string(append(b, ']'))
}

// FTSTokens reports whether search tokens are text in an FTS5 index found
// through a row number (SQLite), rather than an array column (PostgreSQL).
func (d Dialect) FTSTokens() bool { return d.ftsTokens }

// Tokens is a row's search tokens as the dialect binds them into the
// row: a []int64 (bigint[]); for FTS5, their number, since the tokens
// themselves are kept only in the FTS5 index (TokenWords), which needs no
// copy of them to delete a row's (contentless_delete).
func (d Dialect) Tokens(tokens []int64) any {
	if !d.ftsTokens {
		if tokens == nil {
			tokens = []int64{}
		}
		return tokens
	}
	return int64(len(tokens))
}

// TokenWords is a row's search tokens as the FTS5 index takes them: words
// (see TokenWord) separated by spaces.
func TokenWords(tokens []int64) string {
	var b strings.Builder
	for i, t := range tokens {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(TokenWord(t))
	}
	return b.String()
}

// TokenWord is a token as an FTS5 word: base 36, lower case, which FTS5's
// default tokenizer keeps whole and which no query operator (AND, OR,
// NOT, NEAR: upper case only) can be.
func TokenWord(t int64) string { return "t" + strconv.FormatUint(uint64(t), 36) }

// NoLimit is the LIMIT operand that sets no limit.
func (d Dialect) NoLimit() any { return d.noLimit }

// TypeName is the type a column of kind k has in the dialect's tables, as
// ColumnsQuery reports it.
func (d Dialect) TypeName(k Kind) string { return d.types[k] }

// ColumnsQuery selects a table's columns as the live database has them:
// one row per column of name, type (lower case) and whether it is NOT
// NULL, in table order. Its one placeholder is the table name.
func (d Dialect) ColumnsQuery() string { return d.columns }
