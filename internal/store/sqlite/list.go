package sqlite

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"accounts/internal/schema"
	"accounts/internal/store"
)

// where renders conditions as SQL over allow-listed column names, every
// value a bound parameter.
func where(customerID string, conds []store.Condition) (string, []any) {
	var b strings.Builder
	args := []any{customerID}
	b.WriteString("customer_id = ?")
	for _, c := range conds {
		b.WriteString(" AND ")
		var expr string
		switch c.Op {
		case store.IsNull:
			if c.Values[0].(bool) != c.Negate {
				b.WriteString(c.Column + " IS NULL")
			} else {
				b.WriteString(c.Column + " IS NOT NULL")
			}
			continue
		case store.In:
			expr = c.Column + " IN (?" + strings.Repeat(", ?", len(c.Values)-1) + ")"
		default:
			expr = c.Column + " " + comparison[c.Op] + " ?"
		}
		for _, v := range c.Values {
			args = append(args, toSQL(v))
		}
		if c.Negate {
			fmt.Fprintf(&b, "(%s IS NULL OR NOT (%s))", c.Column, expr)
		} else {
			b.WriteString(expr)
		}
	}
	return b.String(), args
}

var comparison = map[store.CondOp]string{
	store.Eq: "=", store.GT: ">", store.GTE: ">=", store.LT: "<", store.LTE: "<=",
}

func (t *txn) List(ctx context.Context, customerID string, res *schema.Resource, spec store.ListSpec, fn func(store.Row) error) error {
	s := t.db.stmts[res]
	cond, args := where(customerID, spec.Where)
	var b strings.Builder
	fmt.Fprintf(&b, "SELECT %s FROM %s WHERE %s", s.selectList, s.table, cond)
	if spec.Since > 0 {
		b.WriteString(" AND seq > ?")
		args = append(args, spec.Since)
	}
	for i, o := range spec.Order {
		if i == 0 {
			b.WriteString(" ORDER BY ")
		} else {
			b.WriteString(", ")
		}
		if o.Desc {
			b.WriteString(o.Column + " DESC NULLS LAST")
		} else {
			b.WriteString(o.Column + " ASC NULLS FIRST")
		}
	}
	if spec.Limit > 0 || spec.Offset > 0 {
		limit := spec.Limit
		if limit == 0 {
			limit = -1 // SQLite's "no limit", which OFFSET needs
		}
		b.WriteString(" LIMIT ? OFFSET ?")
		args = append(args, limit, spec.Offset)
	}
	rows, err := t.tx.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		row, err := s.scan(rows)
		if err != nil {
			return err
		}
		if err := fn(row); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (t *txn) Count(ctx context.Context, customerID string, res *schema.Resource, conds []store.Condition) (int, error) {
	cond, args := where(customerID, conds)
	var n int
	err := t.tx.QueryRowContext(ctx, "SELECT count(*) FROM "+res.Table+" WHERE "+cond, args...).Scan(&n)
	return n, err
}

// Savepoint runs fn inside SAVEPOINT, rolling back to it when fn fails.
func (t *txn) Savepoint(ctx context.Context, fn func() error) error {
	if _, err := t.exec(ctx, savepoint); err != nil {
		return err
	}
	// A rollback also undoes version bumps made inside fn: forget them too.
	versions := maps.Clone(t.versions)
	if err := fn(); err != nil {
		if _, rbErr := t.exec(ctx, rollbackTo); rbErr != nil {
			return rbErr
		}
		t.versions = versions
		t.exec(ctx, releaseSavepoint)
		return err
	}
	_, err := t.exec(ctx, releaseSavepoint)
	return err
}
