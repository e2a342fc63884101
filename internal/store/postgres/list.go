package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"accounts/internal/schema"
	"accounts/internal/store"
)

// params collects a query's bound values and numbers their placeholders.
type params struct{ args []any }

func (p *params) add(v any) string {
	p.args = append(p.args, v)
	return "$" + strconv.Itoa(len(p.args))
}

// where renders conditions as SQL over allow-listed column names, every
// value a bound parameter. A negated condition also keeps rows where the
// column is null, as on SQLite.
func (s statements) where(p *params, customerID string, conds []store.Condition) (string, error) {
	var b strings.Builder
	b.WriteString("customer_id = " + p.add(customerID))
	for _, c := range conds {
		k, ok := s.kinds[c.Column]
		if !ok {
			return "", fmt.Errorf("postgres: %s has no column %q to filter on", s.resource, c.Column)
		}
		b.WriteString(" AND ")
		if c.Op == store.IsNull {
			if len(c.Values) != 1 {
				return "", fmt.Errorf("postgres: an is-null condition on %s needs one value", c.Column)
			}
			isNull, ok := c.Values[0].(bool)
			if !ok {
				return "", fmt.Errorf("postgres: the is-null condition on %s is not a bool", c.Column)
			}
			if isNull != c.Negate {
				b.WriteString(c.Column + " IS NULL")
			} else {
				b.WriteString(c.Column + " IS NOT NULL")
			}
			continue
		}
		values := make([]string, len(c.Values))
		for i, v := range c.Values {
			if err := k.check(c.Column, v); err != nil {
				return "", err
			}
			if k == timeKind && v != nil {
				t, err := time.Parse(store.TimeLayout, v.(string))
				if err != nil {
					return "", fmt.Errorf("postgres: a created_at condition value is not in store.TimeLayout")
				}
				v = t
			}
			values[i] = p.add(v)
		}
		var expr string
		switch {
		case c.Op == store.In && len(values) == 0:
			expr = "FALSE"
		case c.Op == store.In:
			expr = c.Column + " IN (" + strings.Join(values, ", ") + ")"
		default:
			op, ok := comparison[c.Op]
			if !ok || len(values) != 1 {
				return "", fmt.Errorf("postgres: unsupported condition on %s", c.Column)
			}
			expr = c.Column + " " + op + " " + values[0]
		}
		if c.Negate {
			fmt.Fprintf(&b, "(%s IS NULL OR NOT (%s))", c.Column, expr)
		} else {
			b.WriteString(expr)
		}
	}
	return b.String(), nil
}

var comparison = map[store.CondOp]string{
	store.Eq: "=", store.GT: ">", store.GTE: ">=", store.LT: "<", store.LTE: "<=",
}

func (t *txn) List(ctx context.Context, customerID string, res *schema.Resource, spec store.ListSpec, fn func(store.Row) error) error {
	s, err := t.statements(res)
	if err != nil {
		return err
	}
	var p params
	cond, err := s.where(&p, customerID, spec.Where)
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "SELECT %s FROM %s WHERE %s", s.selectList, s.table, cond)
	if spec.Since > 0 {
		b.WriteString(" AND seq > " + p.add(spec.Since))
	}
	for i, o := range spec.Order {
		if _, ok := s.kinds[o.Column]; !ok {
			return fmt.Errorf("postgres: %s has no column %q to order by", s.resource, o.Column)
		}
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
	if spec.Limit > 0 {
		b.WriteString(" LIMIT " + p.add(int64(spec.Limit)))
	}
	if spec.Offset > 0 {
		b.WriteString(" OFFSET " + p.add(int64(spec.Offset)))
	}
	rows, err := t.tx.Query(ctx, b.String(), p.args...)
	if err != nil {
		return sanitize(err)
	}
	defer rows.Close()
	for rows.Next() {
		row, err := s.scan(rows)
		if err != nil {
			return sanitize(err)
		}
		if err := fn(row); err != nil {
			return err
		}
	}
	return sanitize(rows.Err())
}

func (t *txn) Count(ctx context.Context, customerID string, res *schema.Resource, conds []store.Condition) (int, error) {
	s, err := t.statements(res)
	if err != nil {
		return 0, err
	}
	var p params
	cond, err := s.where(&p, customerID, conds)
	if err != nil {
		return 0, err
	}
	var n int
	err = t.tx.QueryRow(ctx, "SELECT count(*) FROM "+s.table+" WHERE "+cond, p.args...).Scan(&n)
	return n, sanitize(err)
}
