package sqlbuild

import (
	"fmt"
	"strings"
	"time"

	"accounts/internal/store"
	"accounts/internal/store/dialect"
)

// List selects, orders and pages a customer's rows, for Scan.
func (t *Table) List(customerID string, spec store.ListSpec) (Stmt, error) {
	var b strings.Builder
	var args []any
	byTokens := len(spec.Match) > 0
	if byTokens && t.d.FTSTokens() {
		// The FTS5 index yields the candidates' row numbers as they are
		// read, and the rows are looked up by them (CROSS JOIN keeps that
		// order): a LIMIT stops the index's work too, where a subquery's
		// whole list of row numbers would be made first.
		expr, err := t.ftsMatch(spec.Match)
		if err != nil {
			return Stmt{}, err
		}
		fmt.Fprintf(&b, "SELECT %s FROM %[2]s_search CROSS JOIN %[2]s ON %[2]s.search_row = %[2]s_search.rowid WHERE %[2]s_search MATCH ? AND ",
			t.qualifiedSelect, t.res.Table)
		args = append(args, expr)
		spec.Match = nil
	} else {
		b.WriteString("SELECT " + t.selectList + " FROM " + t.res.Table + " WHERE ")
	}
	whereArgs, err := t.where(&b, customerID, spec.Where, byTokens)
	if err != nil {
		return Stmt{}, err
	}
	args = append(args, whereArgs...)
	if spec.Since > 0 {
		b.WriteString(" AND seq > ?")
		args = append(args, spec.Since)
	}
	if args, err = t.match(&b, args, spec.Match); err != nil {
		return Stmt{}, err
	}
	for i, o := range spec.Order {
		if _, ok := t.kinds[o.Column]; !ok {
			return Stmt{}, fmt.Errorf("sqlbuild: %s has no column %q to order by", t.res.Name, o.Column)
		}
		if i == 0 {
			b.WriteString(" ORDER BY ")
		} else {
			b.WriteString(", ")
		}
		// Where a column can't be null the nulls' place is left unsaid:
		// PostgreSQL walks its indexes (ASC NULLS LAST) only for an order
		// they give, and would sort every row of the customer instead.
		switch {
		case t.notNull[o.Column] && o.Desc:
			b.WriteString(o.Column + " DESC")
		case t.notNull[o.Column]:
			b.WriteString(o.Column + " ASC")
		case o.Desc:
			b.WriteString(o.Column + " DESC NULLS LAST")
		default:
			b.WriteString(o.Column + " ASC NULLS FIRST")
		}
	}
	if spec.Limit < 0 || spec.Offset < 0 {
		return Stmt{}, fmt.Errorf("sqlbuild: a negative limit or offset")
	}
	if spec.Limit > 0 || spec.Offset > 0 {
		limit := t.d.NoLimit()
		if spec.Limit > 0 {
			limit = int64(spec.Limit)
		}
		b.WriteString(" LIMIT ? OFFSET ?")
		args = append(args, limit, int64(spec.Offset))
	}
	return Stmt{t.d.Bind(b.String()), args}, nil
}

// Larger selects how many rows the customer has, counted up to n+1: more
// than n when it selects n+1, without counting the rest.
func (t *Table) Larger(customerID string, n int) Stmt {
	return Stmt{t.d.Bind(fmt.Sprintf("SELECT count(*) FROM (SELECT 1 FROM %s WHERE customer_id = ? LIMIT ?) AS upto", t.res.Table)),
		[]any{customerID, int64(n) + 1}}
}

// Count counts the customer's rows the conditions select.
func (t *Table) Count(customerID string, where []store.Condition) (Stmt, error) {
	var b strings.Builder
	b.WriteString("SELECT count(*) FROM " + t.res.Table + " WHERE ")
	args, err := t.where(&b, customerID, where, false)
	if err != nil {
		return Stmt{}, err
	}
	return Stmt{t.d.Bind(b.String()), args}, nil
}

var comparison = map[store.CondOp]string{
	store.Eq: "=", store.GT: ">", store.GTE: ">=", store.LT: "<", store.LTE: "<=",
}

// where writes the customer's filter and the conditions, over
// allow-listed column names, every value a bound parameter, and returns
// the values. An empty IN list selects nothing (negated: everything). A
// negated condition also keeps rows where the column is null.
//
// byTokens keeps the customer's filter out of the plan's index choice
// (an expression no index is on): the rows are to be found through the
// search tokens, whose candidates are few, and not by walking the
// customer's rows and testing each; without that, a planner whose
// statistics predate a customer's growth walks them all.
func (t *Table) where(b *strings.Builder, customerID string, conds []store.Condition, byTokens bool) ([]any, error) {
	args := []any{customerID}
	if byTokens {
		b.WriteString("(customer_id || '') = ?")
	} else {
		b.WriteString("customer_id = ?")
	}
	for _, c := range conds {
		k, ok := t.kinds[c.Column]
		if !ok {
			return nil, fmt.Errorf("sqlbuild: %s has no column %q to filter on", t.res.Name, c.Column)
		}
		b.WriteString(" AND ")
		if c.Op == store.IsNull {
			var isNull, ok bool
			if len(c.Values) == 1 {
				isNull, ok = c.Values[0].(bool)
			}
			if !ok {
				return nil, fmt.Errorf("sqlbuild: an is-null condition on %s needs one bool", c.Column)
			}
			if isNull != c.Negate {
				b.WriteString(c.Column + " IS NULL")
			} else {
				b.WriteString(c.Column + " IS NOT NULL")
			}
			continue
		}
		op, ok := comparison[c.Op]
		switch {
		case c.Op == store.In:
		case !ok:
			return nil, fmt.Errorf("sqlbuild: unknown operator %d on %s", c.Op, c.Column)
		case len(c.Values) != 1:
			return nil, fmt.Errorf("sqlbuild: a comparison on %s needs one value, not %d", c.Column, len(c.Values))
		}
		// A list of bytes (blind index hashes) is bound as one parameter
		// (dialect.BytesIn); any other value as a parameter of its own.
		bytesIn := c.Op == store.In && k == dialect.Bytes && len(c.Values) > 0
		var hashes [][]byte
		for _, v := range c.Values {
			v, err := t.condValue(c.Column, k, v)
			if err != nil {
				return nil, err
			}
			if bytesIn {
				b, _ := v.([]byte) // nil equals no hash
				hashes = append(hashes, b)
			} else {
				args = append(args, v)
			}
		}
		var expr string
		switch {
		case c.Op == store.In && len(c.Values) == 0:
			expr = "FALSE"
		case bytesIn:
			expr = t.d.BytesIn(c.Column)
			args = append(args, t.d.BytesList(hashes))
		case c.Op == store.In:
			expr = c.Column + " IN (?" + strings.Repeat(", ?", len(c.Values)-1) + ")"
		default:
			expr = c.Column + " " + op + " ?"
		}
		if c.Negate {
			fmt.Fprintf(b, "(%s IS NULL OR NOT (%s))", c.Column, expr)
		} else {
			b.WriteString(expr)
		}
	}
	return args, nil
}

// match writes the token queries, ANDed, as PostgreSQL's condition: ORs
// of array containments that its GIN index answers. (SQLite's are the
// MATCH of List's join with its FTS5 index: ftsExpression.)
func (t *Table) match(b *strings.Builder, args []any, queries []store.TokenQuery) ([]any, error) {
	if len(queries) == 0 {
		return args, nil
	}
	nothing, err := t.checkMatch(queries)
	if err != nil {
		return nil, err
	}
	if nothing {
		b.WriteString(" AND FALSE")
		return args, nil
	}
	for _, q := range queries {
		b.WriteString(" AND (")
		for j, group := range q {
			if j > 0 {
				b.WriteString(" OR ")
			}
			b.WriteString(TokensColumn + " @> ?")
			args = append(args, group)
		}
		b.WriteByte(')')
	}
	return args, nil
}

// checkMatch refuses token queries of a resource without tokens or with an
// empty group; nothing reports a query of no group, which selects no row.
func (t *Table) checkMatch(queries []store.TokenQuery) (nothing bool, err error) {
	if !t.searched {
		return false, fmt.Errorf("sqlbuild: %s rows have no search tokens", t.res.Name)
	}
	for _, q := range queries {
		for _, group := range q {
			if len(group) == 0 {
				return false, fmt.Errorf("sqlbuild: an empty token group on %s", t.res.Name)
			}
		}
		nothing = nothing || len(q) == 0
	}
	return nothing, nil
}

// ftsMatch checks token queries and writes them as one FTS5 query; a
// query of no group, which selects nothing, as a token no row holds (the
// empty token list).
func (t *Table) ftsMatch(queries []store.TokenQuery) (string, error) {
	nothing, err := t.checkMatch(queries)
	switch {
	case err != nil:
		return "", err
	case nothing:
		return `"` + dialect.TokenWord(-1) + `"`, nil
	}
	return ftsExpression(queries), nil
}

// ftsExpression writes token queries as one FTS5 query: an AND of ORs of
// ANDs of quoted token words.
func ftsExpression(queries []store.TokenQuery) string {
	var expr strings.Builder
	for i, q := range queries {
		if i > 0 {
			expr.WriteString(" AND ")
		}
		expr.WriteByte('(')
		for j, group := range q {
			if j > 0 {
				expr.WriteString(" OR ")
			}
			expr.WriteByte('(')
			for k, tok := range group {
				if k > 0 {
					expr.WriteString(" AND ")
				}
				expr.WriteString(`"` + dialect.TokenWord(tok) + `"`)
			}
			expr.WriteByte(')')
		}
		expr.WriteByte(')')
	}
	return expr.String()
}

// condValue checks a condition value and binds it: created_at values come
// as text in dialect.TimeLayout.
func (t *Table) condValue(column string, k dialect.Kind, v any) (any, error) {
	if err := check(column, k, v); err != nil {
		return nil, err
	}
	if k != dialect.Time || v == nil {
		return v, nil
	}
	at, err := time.Parse(dialect.TimeLayout, v.(string))
	if err != nil {
		return nil, fmt.Errorf("sqlbuild: a %s condition value is not in dialect.TimeLayout", column)
	}
	return t.d.Time(at), nil
}
