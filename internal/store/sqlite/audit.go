package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"accounts/internal/audit"
	"accounts/internal/store"
	"accounts/internal/store/sqlbuild"
)

// upsertAuditHead records a chain's new head. SQLite has one writer, so
// reading each head inside the write transaction and writing it back
// serializes appends; the PostgreSQL store locks its head rows instead.
const upsertAuditHead = `INSERT INTO audit_heads (customer_id, position, hash) VALUES (?, ?, ?)
		ON CONFLICT (customer_id) DO UPDATE SET position = excluded.position, hash = excluded.hash`

// linkAudit links the entries a transaction appended to their customers'
// chains, in order, just before it commits, and stores them with as few
// statements as sqlbuild.AuditEntriesPerInsert allows: a batch of reads
// carries hundreds of entries.
func (t *txn) linkAudit(ctx context.Context, entries []*audit.Entry) error {
	heads := map[string]*audit.Chain{}
	for _, e := range entries {
		head, ok := heads[e.CustomerID]
		if !ok {
			head = &audit.Chain{}
			err := t.conn.QueryRow(ctx, t.db.build.AuditHead(e.CustomerID)).Scan(&head.Position, &head.Hash)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			heads[e.CustomerID] = head
		}
		head.Append(e)
	}
	stmts, err := t.db.build.InsertAuditEntries(entries)
	if err != nil {
		return err
	}
	for _, stmt := range stmts {
		if _, err := t.conn.Exec(ctx, stmt); err != nil {
			return err
		}
	}
	for customer, head := range heads {
		stmt := sqlbuild.Stmt{SQL: upsertAuditHead, Args: []any{customer, head.Position, head.Hash}}
		if _, err := t.conn.Exec(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

// AuditCustomers lists the customers that have an audit chain.
func (db *DB) AuditCustomers(ctx context.Context) ([]string, error) {
	stmt := db.build.AuditCustomers()
	rows, err := db.reader.QueryContext(ctx, stmt.SQL, stmt.Args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// AuditHead returns the recorded head of a customer's chain.
func (db *DB) AuditHead(ctx context.Context, customerID string) (audit.Chain, error) {
	var head audit.Chain
	stmt := db.build.AuditHead(customerID)
	err := db.reader.QueryRowContext(ctx, stmt.SQL, stmt.Args...).Scan(&head.Position, &head.Hash)
	if errors.Is(err, sql.ErrNoRows) {
		return audit.Chain{}, nil
	}
	return head, err
}

// AuditEntries streams a customer's entries in position order.
func (db *DB) AuditEntries(ctx context.Context, customerID string, fn func(audit.Entry) error) error {
	stmt := db.build.AuditEntries(customerID)
	rows, err := db.reader.QueryContext(ctx, stmt.SQL, stmt.Args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		e, err := sqlbuild.ScanAuditEntry(customerID, rows)
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return rows.Err()
}
