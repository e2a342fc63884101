package postgres

import (
	"context"
	"errors"
	"slices"
	"time"

	"accounts/internal/audit"

	"github.com/jackc/pgx/v5"
)

// AppendAudit links entries to their customers' chains. Each chain's head
// row is locked (created first if need be) until the transaction ends, so
// concurrent appends to one chain, from any process, queue in order. Heads
// are locked in customer order, so two transactions appending for the same
// customers can't deadlock.
func (t *txn) AppendAudit(ctx context.Context, entries []audit.Entry) error {
	heads := map[string]*audit.Chain{}
	var customers []string
	for _, e := range entries {
		if heads[e.CustomerID] == nil {
			heads[e.CustomerID] = &audit.Chain{}
			customers = append(customers, e.CustomerID)
		}
	}
	slices.Sort(customers)
	for _, customer := range customers {
		if _, err := t.tx.Exec(ctx, `INSERT INTO audit_heads (customer_id, position, hash)
			VALUES ($1, 0, $2) ON CONFLICT (customer_id) DO NOTHING`, customer, make([]byte, audit.HashSize)); err != nil {
			return sanitize(err)
		}
		head := heads[customer]
		if err := t.tx.QueryRow(ctx, `SELECT position, hash FROM audit_heads WHERE customer_id = $1 FOR UPDATE`,
			customer).Scan(&head.Position, &head.Hash); err != nil {
			return sanitize(err)
		}
	}
	for i := range entries {
		e := &entries[i]
		heads[e.CustomerID].Append(e)
		if _, err := t.tx.Exec(ctx, `INSERT INTO audit_entries (customer_id, position, at, client_id, request_id,
			action, resource, object_ids, fields, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			e.CustomerID, e.Position, e.Time.UTC().Truncate(time.Microsecond), e.ClientID, e.RequestID, string(e.Action),
			e.Resource, nonNil(e.ObjectIDs), nonNil(e.Fields), e.PrevHash, e.Hash); err != nil {
			return sanitize(err)
		}
	}
	for _, customer := range customers {
		head := heads[customer]
		if _, err := t.tx.Exec(ctx, `UPDATE audit_heads SET position = $2, hash = $3 WHERE customer_id = $1`,
			customer, head.Position, head.Hash); err != nil {
			return sanitize(err)
		}
	}
	return nil
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// AuditCustomers lists the customers that have an audit chain.
func (db *DB) AuditCustomers(ctx context.Context) ([]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT customer_id FROM audit_heads WHERE position > 0 ORDER BY customer_id`)
	if err != nil {
		return nil, sanitize(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return ids, sanitize(err)
}

// AuditHead returns the recorded head of a customer's chain.
func (db *DB) AuditHead(ctx context.Context, customerID string) (audit.Chain, error) {
	var head audit.Chain
	err := db.pool.QueryRow(ctx, `SELECT position, hash FROM audit_heads WHERE customer_id = $1`, customerID).
		Scan(&head.Position, &head.Hash)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && head.Position == 0) {
		return audit.Chain{}, nil
	}
	return head, sanitize(err)
}

// AuditEntries streams a customer's entries in position order.
func (db *DB) AuditEntries(ctx context.Context, customerID string, fn func(audit.Entry) error) error {
	rows, err := db.pool.Query(ctx, `SELECT position, at, client_id, request_id, action, resource, object_ids,
		fields, prev_hash, hash FROM audit_entries WHERE customer_id = $1 ORDER BY position`, customerID)
	if err != nil {
		return sanitize(err)
	}
	defer rows.Close()
	for rows.Next() {
		e := audit.Entry{CustomerID: customerID}
		var action string
		if err := rows.Scan(&e.Position, &e.Time, &e.ClientID, &e.RequestID, &action, &e.Resource, &e.ObjectIDs,
			&e.Fields, &e.PrevHash, &e.Hash); err != nil {
			return sanitize(err)
		}
		e.Action = audit.Action(action)
		e.Time = e.Time.UTC()
		if err := fn(e); err != nil {
			return err
		}
	}
	return sanitize(rows.Err())
}
