package postgres

import (
	"context"
	"errors"
	"slices"

	"accounts/internal/audit"
	"accounts/internal/store/sqlbuild"

	"github.com/jackc/pgx/v5"
)

// The statements on the audit heads that only this store runs: it locks
// each head row for the transaction, where the SQLite store relies on its
// one writer.
const (
	createAuditHead = `INSERT INTO audit_heads (customer_id, position, hash)
			VALUES ($1, 0, $2) ON CONFLICT (customer_id) DO NOTHING`
	lockAuditHead   = `SELECT position, hash FROM audit_heads WHERE customer_id = $1 FOR UPDATE`
	updateAuditHead = `UPDATE audit_heads SET position = $2, hash = $3 WHERE customer_id = $1`
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
		if _, err := t.tx.Exec(ctx, createAuditHead, customer, make([]byte, audit.HashSize)); err != nil {
			return sanitize(err)
		}
		head := heads[customer]
		if err := t.tx.QueryRow(ctx, lockAuditHead, customer).Scan(&head.Position, &head.Hash); err != nil {
			return sanitize(err)
		}
	}
	for i := range entries {
		e := &entries[i]
		heads[e.CustomerID].Append(e)
		stmt, err := t.db.build.InsertAuditEntry(*e)
		if err != nil {
			return err
		}
		if _, err := t.tx.Exec(ctx, stmt.SQL, stmt.Args...); err != nil {
			return sanitize(err)
		}
	}
	for _, customer := range customers {
		head := heads[customer]
		if _, err := t.tx.Exec(ctx, updateAuditHead, customer, head.Position, head.Hash); err != nil {
			return sanitize(err)
		}
	}
	return nil
}

// AuditCustomers lists the customers that have an audit chain.
func (db *DB) AuditCustomers(ctx context.Context) ([]string, error) {
	stmt := db.build.AuditCustomers()
	rows, err := db.pool.Query(ctx, stmt.SQL, stmt.Args...)
	if err != nil {
		return nil, sanitize(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return ids, sanitize(err)
}

// AuditHead returns the recorded head of a customer's chain.
func (db *DB) AuditHead(ctx context.Context, customerID string) (audit.Chain, error) {
	var head audit.Chain
	stmt := db.build.AuditHead(customerID)
	err := db.pool.QueryRow(ctx, stmt.SQL, stmt.Args...).Scan(&head.Position, &head.Hash)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && head.Position == 0) {
		return audit.Chain{}, nil
	}
	return head, sanitize(err)
}

// AuditEntries streams a customer's entries in position order.
func (db *DB) AuditEntries(ctx context.Context, customerID string, fn func(audit.Entry) error) error {
	stmt := db.build.AuditEntries(customerID)
	rows, err := db.pool.Query(ctx, stmt.SQL, stmt.Args...)
	if err != nil {
		return sanitize(err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := sqlbuild.ScanAuditEntry(customerID, rows)
		if err != nil {
			return sanitize(err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return sanitize(rows.Err())
}
