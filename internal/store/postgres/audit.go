package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"accounts/internal/audit"
	"accounts/internal/store/sqlbuild"

	"github.com/jackc/pgx/v5"
)

// The statements that link a transaction's audit entries to their chains,
// two round trips whatever the number of entries and customers:
//
//   - lockAuditHeads locks the head row of each customer (creating it at
//     position 0 first if need be) and returns it: the upsert's DO UPDATE
//     locks the row until the transaction ends, so appends to one chain,
//     from any process, queue in order. The customers come sorted, and the
//     rows are locked in that order, so two transactions can't deadlock.
//   - insertAuditEntries stores every entry with one statement (arrays of
//     columns, unnested; the lists as JSON, one array per entry).
//   - updateAuditHeads writes every new head, sent with the entries.
//
// The transaction links its entries as its last step (sqltx.Tx.RunBatch), so
// a head row stays locked only for the time of these statements and the
// commit: writers of one customer queue there, not for the whole of their
// transactions. A transaction shared by a batch of requests extends each
// chain once for the whole batch.
const (
	lockAuditHeads = `INSERT INTO audit_heads AS h (customer_id, position, hash)
			SELECT c, 0, $2 FROM unnest($1::text[]) AS c ORDER BY c
			ON CONFLICT (customer_id) DO UPDATE SET position = h.position
			RETURNING customer_id, position, hash`
	insertAuditEntries = `INSERT INTO audit_entries (customer_id, position, at, client_id, request_id, action,
			resource, object_ids, fields, prev_hash, hash)
		SELECT c, p, a, cl, r, act, res,
			ARRAY(SELECT jsonb_array_elements_text(o)), ARRAY(SELECT jsonb_array_elements_text(f)), ph, h
		FROM unnest($1::text[], $2::bigint[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[],
			$8::jsonb[], $9::jsonb[], $10::bytea[], $11::bytea[]) AS e(c, p, a, cl, r, act, res, o, f, ph, h)`
	updateAuditHeads = `UPDATE audit_heads AS h SET position = n.p, hash = n.hash
		FROM unnest($1::text[], $2::bigint[], $3::bytea[]) AS n(c, p, hash) WHERE h.customer_id = n.c`
)

// linkAudit links the entries a transaction appended to their customers'
// chains, in order, just before it commits.
func (t *txn) linkAudit(ctx context.Context, entries []*audit.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	var customers []string
	for _, e := range entries {
		if !slices.Contains(customers, e.CustomerID) {
			customers = append(customers, e.CustomerID)
		}
	}
	slices.Sort(customers)
	heads := make(map[string]*audit.Chain, len(customers))
	lock := sqlbuild.Stmt{SQL: lockAuditHeads, Args: []any{customers, make([]byte, audit.HashSize)}}
	err := t.conn.Query(ctx, lock, func(r sqlbuild.Scanner) error {
		var customer string
		head := &audit.Chain{}
		if err := r.Scan(&customer, &head.Position, &head.Hash); err != nil {
			return err
		}
		heads[customer] = head
		return nil
	})
	if err != nil {
		return err
	}
	if len(heads) != len(customers) {
		return errors.New("postgres: audit heads missing after locking them")
	}
	n := len(entries)
	var (
		cs, clients, requests, actions, resources = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		ids, fields                               = make([]string, n), make([]string, n)
		positions                                 = make([]int64, n)
		times                                     = make([]time.Time, n)
		prevs, hashes                             = make([][]byte, n), make([][]byte, n)
	)
	for i, e := range entries {
		heads[e.CustomerID].Append(e)
		cs[i], positions[i], times[i] = e.CustomerID, e.Position, e.Time.UTC().Truncate(time.Microsecond)
		clients[i], requests[i], actions[i], resources[i] = e.ClientID, e.RequestID, string(e.Action), e.Resource
		if ids[i], err = jsonList(e.ObjectIDs); err != nil {
			return err
		}
		if fields[i], err = jsonList(e.Fields); err != nil {
			return err
		}
		prevs[i], hashes[i] = e.PrevHash, e.Hash
	}
	headPositions, headHashes := make([]int64, len(customers)), make([][]byte, len(customers))
	for i, c := range customers {
		headPositions[i], headHashes[i] = heads[c].Position, heads[c].Hash
	}
	// The entries and the heads go in one round trip.
	b := &pgx.Batch{}
	b.Queue(insertAuditEntries, cs, positions, times, clients, requests, actions, resources, ids, fields, prevs, hashes)
	b.Queue(updateAuditHeads, customers, headPositions, headHashes)
	return sanitize(t.tx.SendBatch(ctx, b).Close())
}

// jsonList is a list of strings as insertAuditEntries takes it: a JSON
// array (empty, never null).
func jsonList(l []string) (string, error) {
	if l == nil {
		l = []string{}
	}
	b, err := json.Marshal(l)
	return string(b), err
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
