package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"accounts/internal/audit"
	"accounts/internal/store"
	"accounts/internal/store/pgsafe"
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

// appendAtKnownHeads appends entries whose links were computed from heads
// this process saw last, in one statement and one round trip (its own
// implicit transaction): it locks the customers' head rows in order, moves
// each head that is still the one the links were computed from, and stores
// the entries of those customers only, returning their customer ids. A
// customer whose head moved meanwhile (another process or transaction
// appended) keeps its head and gets none of its entries stored: each chain
// is extended whole from its true head, or not at all.
const appendAtKnownHeads = `WITH locked AS (
			SELECT customer_id, position, hash FROM audit_heads
			WHERE customer_id = ANY($12::text[]) ORDER BY customer_id FOR UPDATE),
		moved AS (
			UPDATE audit_heads AS h SET position = n.p, hash = n.hash
			FROM locked AS l, unnest($12::text[], $13::bigint[], $14::bytea[], $15::bigint[], $16::bytea[])
				AS n(c, p, hash, was_p, was_hash)
			WHERE h.customer_id = n.c AND l.customer_id = n.c AND l.position = n.was_p AND l.hash = n.was_hash
			RETURNING h.customer_id)
	` + insertAuditEntries + `
		WHERE e.c IN (SELECT customer_id FROM moved)
		RETURNING customer_id`

// knownHeads remembers the head of each customer's chain as this process
// last linked it, for AppendAuditAlone. It is only a guess: the statement
// that uses it checks it against the head row.
type knownHeads struct {
	mu    sync.Mutex
	heads map[string]audit.Chain
}

func (k *knownHeads) set(customerID string, head audit.Chain) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.heads == nil {
		k.heads = map[string]audit.Chain{}
	}
	k.heads[customerID] = head
}

func (k *knownHeads) get(customerID string) (audit.Chain, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	head, ok := k.heads[customerID]
	return head, ok
}

// AppendAuditAlone appends entries to their chains in a transaction of
// their own. Where this process knows the heads, that is one statement
// (appendAtKnownHeads) instead of a locking transaction through the write
// batches (the heads' lock with its BEGIN, then the entries and heads with
// its COMMIT): the read log's batches commit one at a time, and every read
// waits for its batch. Entries of customers whose head is unknown or has
// moved take the locking path.
func (db *DB) AppendAuditAlone(ctx context.Context, entries []audit.Entry) error {
	rest, err := db.appendAtKnownHeads(ctx, entries)
	if err != nil || len(rest) == 0 {
		return err
	}
	return db.Update(ctx, func(tx store.Tx) error { return tx.AppendAudit(ctx, rest) })
}

// appendAtKnownHeads stores the entries of the customers whose heads this
// process knows and are still current, and returns the others' entries.
func (db *DB) appendAtKnownHeads(ctx context.Context, entries []audit.Entry) ([]audit.Entry, error) {
	// Each customer's head as the links start from it (was) and as they
	// extend it (now).
	type link struct{ was, now audit.Chain }
	links := map[string]*link{}
	var known []*audit.Entry
	for i := range entries {
		e := &entries[i]
		l := links[e.CustomerID]
		if l == nil {
			head, ok := db.heads.get(e.CustomerID)
			if !ok {
				continue
			}
			l = &link{was: head, now: head}
			links[e.CustomerID] = l
		}
		l.now.Append(e)
		known = append(known, e)
	}
	if len(known) == 0 {
		return entries, nil
	}
	customers := slices.Sorted(maps.Keys(links))
	before, now := make([]audit.Chain, len(customers)), make([]audit.Chain, len(customers))
	for i, c := range customers {
		before[i], now[i] = links[c].was, links[c].now
	}
	rows, err := newAuditRows(known)
	if err != nil {
		return nil, err
	}
	args := append(rows.args(), customers, positions(now), hashes(now), positions(before), hashes(before))
	stored, err := db.pool.Query(ctx, appendAtKnownHeads, args...)
	if err != nil {
		return nil, pgsafe.Err(err)
	}
	ids, err := pgx.CollectRows(stored, pgx.RowTo[string])
	if err != nil {
		return nil, pgsafe.Err(err)
	}
	done := map[string]bool{}
	for _, id := range ids {
		done[id] = true
	}
	for i, c := range customers {
		if done[c] {
			db.heads.set(c, now[i])
		}
	}
	var rest []audit.Entry
	for _, e := range entries {
		if !done[e.CustomerID] {
			rest = append(rest, e)
		}
	}
	return rest, nil
}

// positions and hashes are the heads' columns, as the statements take them.
func positions(heads []audit.Chain) []int64 {
	out := make([]int64, len(heads))
	for i, h := range heads {
		out[i] = h.Position
	}
	return out
}

func hashes(heads []audit.Chain) [][]byte {
	out := make([][]byte, len(heads))
	for i, h := range heads {
		out[i] = h.Hash
	}
	return out
}

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
	for _, e := range entries {
		heads[e.CustomerID].Append(e)
	}
	rows, err := newAuditRows(entries)
	if err != nil {
		return err
	}
	now := make([]audit.Chain, len(customers))
	for i, c := range customers {
		now[i] = *heads[c]
		// Remembered before the commit: a head that never commits only
		// sends the next AppendAuditAlone of its customer down the locking
		// path.
		t.db.heads.set(c, now[i])
	}
	// The entries and the heads go with the COMMIT.
	t.conn.later(sqlbuild.Stmt{SQL: insertAuditEntries, Args: rows.args()})
	t.conn.later(sqlbuild.Stmt{SQL: updateAuditHeads, Args: []any{customers, positions(now), hashes(now)}})
	return nil
}

// auditRows are audit entries as insertAuditEntries takes them: a column
// of each field.
type auditRows struct {
	customers, clients, requests, actions, resources, ids, fields []string
	positions                                                     []int64
	times                                                         []time.Time
	prevs, hashes                                                 [][]byte
}

func newAuditRows(entries []*audit.Entry) (auditRows, error) {
	n := len(entries)
	r := auditRows{
		customers: make([]string, n), clients: make([]string, n), requests: make([]string, n),
		actions: make([]string, n), resources: make([]string, n), ids: make([]string, n), fields: make([]string, n),
		positions: make([]int64, n), times: make([]time.Time, n), prevs: make([][]byte, n), hashes: make([][]byte, n),
	}
	for i, e := range entries {
		var err error
		r.customers[i], r.positions[i], r.times[i] = e.CustomerID, e.Position, e.Time.UTC().Truncate(time.Microsecond)
		r.clients[i], r.requests[i], r.actions[i], r.resources[i] = e.ClientID, e.RequestID, string(e.Action), e.Resource
		if r.ids[i], err = jsonList(e.ObjectIDs); err != nil {
			return auditRows{}, err
		}
		if r.fields[i], err = jsonList(e.Fields); err != nil {
			return auditRows{}, err
		}
		r.prevs[i], r.hashes[i] = e.PrevHash, e.Hash
	}
	return r, nil
}

// args are insertAuditEntries' parameters.
func (r auditRows) args() []any {
	return []any{r.customers, r.positions, r.times, r.clients, r.requests, r.actions, r.resources, r.ids, r.fields, r.prevs, r.hashes}
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
		return nil, pgsafe.Err(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return ids, pgsafe.Err(err)
}

// AuditHead returns the recorded head of a customer's chain.
func (db *DB) AuditHead(ctx context.Context, customerID string) (audit.Chain, error) {
	var head audit.Chain
	stmt := db.build.AuditHead(customerID)
	err := db.pool.QueryRow(ctx, stmt.SQL, stmt.Args...).Scan(&head.Position, &head.Hash)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && head.Position == 0) {
		return audit.Chain{}, nil
	}
	return head, pgsafe.Err(err)
}

// AuditEntries streams a customer's entries in position order.
func (db *DB) AuditEntries(ctx context.Context, customerID string, fn func(audit.Entry) error) error {
	stmt := db.build.AuditEntries(customerID)
	rows, err := db.pool.Query(ctx, stmt.SQL, stmt.Args...)
	if err != nil {
		return pgsafe.Err(err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := sqlbuild.ScanAuditEntry(customerID, rows)
		if err != nil {
			return pgsafe.Err(err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return pgsafe.Err(rows.Err())
}
