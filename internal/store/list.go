package store

// CondOp is an operator the database evaluates on a clear column.
type CondOp int

// The operators a store evaluates. String matching beyond equality is not
// here: it runs in the service, so that case folding is the same on every
// engine.
const (
	Eq CondOp = iota
	In
	IsNull // Values[0] is true for "is null", false for "is not null"
	GT
	GTE
	LT
	LTE
)

// Condition is one filter on a clear column. A negated condition also keeps
// rows where the column is null.
type Condition struct {
	Column string
	Op     CondOp
	Negate bool
	// Values are in the column's stored form: string, bool, []byte.
	Values []any
}

// OrderBy is one ordering key. Nulls sort first ascending, last descending,
// on every engine.
type OrderBy struct {
	Column string
	Desc   bool
}

// ListSpec selects, orders and pages rows of one customer.
type ListSpec struct {
	Where []Condition
	Order []OrderBy
	// Limit is the most rows returned (0: all); Offset skips rows first.
	Limit, Offset int
	// Since selects only rows written after that list version (see
	// Tx.Version); 0 selects all.
	Since int64
	// Match narrows to rows whose search tokens satisfy every query (see
	// TokenQuery); only for a schema.Resource.SearchIndexed resource.
	Match []TokenQuery
}

// TokenQuery selects the rows holding every token of at least one of its
// groups (an OR of ANDs). Tokens are a keyed, truncated digest
// (internal/searchindex), so a match is a candidate that the service
// confirms after decrypting it, never an answer. A query with no group
// selects nothing.
type TokenQuery [][]int64
