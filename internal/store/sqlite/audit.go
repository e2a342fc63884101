package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"accounts/internal/audit"
	"accounts/internal/store"
)

const (
	selectAuditHead = `SELECT position, hash FROM audit_heads WHERE customer_id = ?`
	upsertAuditHead = `INSERT INTO audit_heads (customer_id, position, hash) VALUES (?, ?, ?)
		ON CONFLICT (customer_id) DO UPDATE SET position = excluded.position, hash = excluded.hash`
	insertAuditEntry = `INSERT INTO audit_entries (customer_id, position, at, client_id, request_id, action,
		resource, object_ids, fields, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
)

// AppendAudit links entries to their customers' chains. SQLite has one
// writer, so reading each head inside the write transaction serializes
// appends.
func (t *txn) AppendAudit(ctx context.Context, entries []audit.Entry) error {
	heads := map[string]*audit.Chain{}
	for i := range entries {
		e := &entries[i]
		head, ok := heads[e.CustomerID]
		if !ok {
			head = &audit.Chain{}
			err := t.queryRow(ctx, selectAuditHead, e.CustomerID).Scan(&head.Position, &head.Hash)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			heads[e.CustomerID] = head
		}
		head.Append(e)
		ids, err := json.Marshal(nonNil(e.ObjectIDs))
		if err != nil {
			return err
		}
		fields, err := json.Marshal(nonNil(e.Fields))
		if err != nil {
			return err
		}
		if _, err := t.exec(ctx, insertAuditEntry, e.CustomerID, e.Position, e.Time.UTC().Format(store.TimeLayout),
			e.ClientID, e.RequestID, string(e.Action), e.Resource, string(ids), string(fields), e.PrevHash, e.Hash); err != nil {
			return err
		}
	}
	for customer, head := range heads {
		if _, err := t.exec(ctx, upsertAuditHead, customer, head.Position, head.Hash); err != nil {
			return err
		}
	}
	return nil
}

// nonNil stores an empty list as [] (never null), as PostgreSQL's arrays do.
func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// AuditCustomers lists the customers that have an audit chain.
func (db *DB) AuditCustomers(ctx context.Context) ([]string, error) {
	rows, err := db.reader.QueryContext(ctx, `SELECT customer_id FROM audit_heads ORDER BY customer_id`)
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
	err := db.reader.QueryRowContext(ctx, selectAuditHead, customerID).Scan(&head.Position, &head.Hash)
	if errors.Is(err, sql.ErrNoRows) {
		return audit.Chain{}, nil
	}
	return head, err
}

// AuditEntries streams a customer's entries in position order.
func (db *DB) AuditEntries(ctx context.Context, customerID string, fn func(audit.Entry) error) error {
	rows, err := db.reader.QueryContext(ctx, `SELECT position, at, client_id, request_id, action, resource,
		object_ids, fields, prev_hash, hash FROM audit_entries WHERE customer_id = ? ORDER BY position`, customerID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		e := audit.Entry{CustomerID: customerID}
		var at, action, ids, fields string
		if err := rows.Scan(&e.Position, &at, &e.ClientID, &e.RequestID, &action, &e.Resource, &ids, &fields,
			&e.PrevHash, &e.Hash); err != nil {
			return err
		}
		e.Action = audit.Action(action)
		if e.Time, err = time.Parse(store.TimeLayout, at); err != nil {
			return fmt.Errorf("sqlite: audit entry time: %w", err)
		}
		if err := json.Unmarshal([]byte(ids), &e.ObjectIDs); err != nil {
			return fmt.Errorf("sqlite: audit entry object ids: %w", err)
		}
		if err := json.Unmarshal([]byte(fields), &e.Fields); err != nil {
			return fmt.Errorf("sqlite: audit entry fields: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return rows.Err()
}
