// Package sqltx is store.Tx written once, for both engines: each method
// takes its statements from sqlbuild and runs them on the Conn an engine
// gives, which executes them with the engine's driver and classifies its
// errors. So the engines keep only what truly differs: how a statement
// runs (SQLite's statements prepared at open, pgx's cache), their error
// codes, and linking audit entries to their chains, whose head rows each
// engine reads and writes its own way.
//
// A transaction takes the rows every writer of a customer shares at its
// very end (finish), in a fixed order: the list version of each table it
// wrote, and the audit chains it extends. Until then its rows carry a
// placeholder version and its audit entries wait in memory, so concurrent
// transactions of one customer run side by side and queue only for their
// last statements and commit, and two transactions can't take those rows in
// opposite orders (no deadlock). Several requests can share one
// transaction (RunBatch, the group commit of the engines' Update), each in
// its own savepoint.
package sqltx

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"slices"
	"sync/atomic"

	"accounts/internal/audit"
	"accounts/internal/schema"
	"accounts/internal/store"
	"accounts/internal/store/sqlbuild"
)

// Conn is one transaction of an engine. Its errors are classified: a
// unique violation is a *store.UniqueViolation, a foreign key violation a
// *store.ReferenceViolation (with an empty Column when the engine can't
// tell which key: then the transaction must stay usable, as SQLite's
// does, for Tx to find out), and no error quotes a value.
type Conn interface {
	// Exec runs a statement and returns the number of rows it changed.
	Exec(ctx context.Context, s sqlbuild.Stmt) (int64, error)
	// ExecLater runs a statement whose result nothing reads. An engine
	// whose statements are round trips may send it with the next statement
	// (or the commit), whose failure its failure then is.
	ExecLater(ctx context.Context, s sqlbuild.Stmt) error
	// QueryRow runs a query for at most one row; its Scan returns
	// store.ErrNotFound when there is none.
	QueryRow(ctx context.Context, s sqlbuild.Stmt) sqlbuild.Scanner
	// Query calls fn with each row of a query, in order, and returns fn's
	// first error as it is.
	Query(ctx context.Context, s sqlbuild.Stmt, fn func(sqlbuild.Scanner) error) error
	// Stream is Query for a query whose caller may stop early, after a
	// few of many rows (a list filtered in the service, cut at the end of
	// its page): the engine plans it to give its first rows soon and
	// reads no more of them than the caller takes.
	Stream(ctx context.Context, s sqlbuild.Stmt, fn func(sqlbuild.Scanner) error) error
	// ByIndex runs fn, whose statements an index serves, so that they are
	// planned through it even where the engine's statistics would have them
	// read the whole table (PostgreSQL's, before ANALYZE has seen a table
	// grow: it takes a lookup through the search tokens of a few rows for
	// one of many).
	ByIndex(ctx context.Context, fn func() error) error
}

// pendingSeq is the list version a transaction's rows carry until finish
// gives them the version it takes. No committed row keeps it (versions
// start at 1), and other transactions never see a row that has it.
const pendingSeq = -1

// versionKey names one customer's list version of one table.
type versionKey struct {
	customerID string
	table      *sqlbuild.Table
}

// Tx is store.Tx on a Conn.
type Tx struct {
	conn  Conn
	build *sqlbuild.Builder
	// versions are the list versions this transaction writes, by customer
	// and table: pendingSeq until the version is taken (by finish, or by
	// Version inside the transaction), then the version taken.
	versions map[versionKey]int64
	// entries are the audit entries appended, linked by finish.
	entries []*audit.Entry
	// tokenWrites are the tokens of the rows written that finish writes
	// into their FTS5 index (sqlbuild.Table.IndexTokens): FTS5 moves what
	// it has gathered to disk at every savepoint and statement, as a
	// segment it must later merge, so a batch's rows are indexed together
	// after its savepoints, rather than each in its own.
	tokenWrites []tokenWrite
	// view is set in a read-only transaction (NewView).
	view bool
}

// New is a write transaction running build's statements on conn.
func New(conn Conn, build *sqlbuild.Builder) *Tx { return &Tx{conn: conn, build: build} }

// NewView is a read-only transaction running build's statements on conn:
// it locks no row it reads (a read-only PostgreSQL transaction refuses a
// locking read), and it writes nothing for a lock to guard.
func NewView(conn Conn, build *sqlbuild.Builder) *Tx {
	return &Tx{conn: conn, build: build, view: true}
}

// write looks up res's statements and returns the list version the
// transaction's writes of the customer's table carry: pendingSeq until it
// is taken.
func (t *Tx) write(customerID string, res *schema.Resource) (*sqlbuild.Table, int64, error) {
	s, err := t.build.Table(res)
	if err != nil {
		return nil, 0, err
	}
	key := versionKey{customerID, s}
	if v, ok := t.versions[key]; ok {
		return s, v, nil
	}
	if t.versions == nil {
		t.versions = map[versionKey]int64{}
	}
	t.versions[key] = pendingSeq
	return s, pendingSeq, nil
}

// takeVersion bumps the list version key names and stamps the rows the
// transaction wrote to that table of that customer with it. The bump locks the version's row
// until the transaction ends, so concurrent writers of that table get
// their versions in commit order.
func (t *Tx) takeVersion(ctx context.Context, key versionKey) error {
	var v int64
	if err := t.conn.QueryRow(ctx, t.build.BumpVersion(key.customerID, key.table.Name())).Scan(&v); err != nil {
		return t.reference(ctx, err, key.customerID, nil, store.Row{})
	}
	if err := t.conn.ExecLater(ctx, key.table.Stamp(key.customerID, pendingSeq, v)); err != nil {
		return err
	}
	t.versions[key] = v
	return nil
}

// finish writes the tokens of the rows written into the FTS5 indexes,
// takes the versions the transaction's writes still wait for, in
// customer and table order, and returns the audit entries appended, in
// order, for the engine to link to their chains (in customer order) just
// before it commits.
func (t *Tx) finish(ctx context.Context) ([]*audit.Entry, error) {
	if err := t.writeTokens(ctx); err != nil {
		return nil, err
	}
	keys := slices.SortedFunc(maps.Keys(t.versions), func(a, b versionKey) int {
		return cmp.Or(cmp.Compare(a.customerID, b.customerID), cmp.Compare(a.table.Name(), b.table.Name()))
	})
	for _, key := range keys {
		if t.versions[key] != pendingSeq {
			continue
		}
		if err := t.takeVersion(ctx, key); err != nil {
			return nil, err
		}
	}
	return t.entries, nil
}

// tokenWrite is a row's tokens for its table's FTS5 index.
type tokenWrite struct {
	table *sqlbuild.Table
	sqlbuild.TokenWrite
}

// writeTokens writes the tokens of the rows written into their tables'
// FTS5 indexes: the last write of each row, table by table.
func (t *Tx) writeTokens(ctx context.Context) error {
	type rowKey struct {
		table          *sqlbuild.Table
		customerID, id string
	}
	last := map[rowKey]int{}
	for i, w := range t.tokenWrites {
		last[rowKey{w.table, w.CustomerID, w.ID}] = i
	}
	byTable := map[*sqlbuild.Table][]sqlbuild.TokenWrite{}
	var tables []*sqlbuild.Table
	for i, w := range t.tokenWrites {
		if last[rowKey{w.table, w.CustomerID, w.ID}] != i {
			continue
		}
		if _, ok := byTable[w.table]; !ok {
			tables = append(tables, w.table)
		}
		byTable[w.table] = append(byTable[w.table], w.TokenWrite)
	}
	t.tokenWrites = nil
	for _, table := range tables {
		stmts, err := table.IndexTokens(byTable[table])
		if err != nil {
			return err
		}
		for _, stmt := range stmts {
			if _, err := t.conn.Exec(ctx, stmt); err != nil {
				return err
			}
		}
	}
	return nil
}

// AppendAudit keeps entries for finish, which links them to their chains
// when the transaction is about to commit: each entry's Position, PrevHash
// and Hash are set then.
func (t *Tx) AppendAudit(_ context.Context, entries []audit.Entry) error {
	for i := range entries {
		t.entries = append(t.entries, &entries[i])
	}
	return nil
}

// reference names the column of a foreign key violation the engine could
// not name (SQLite does not say which key failed): the customer's when the
// customer is unknown, as PostgreSQL checks it first, else the first of
// row's references (of table s) whose target the customer does not have.
// Any other error is returned as it is.
func (t *Tx) reference(ctx context.Context, err error, customerID string, s *sqlbuild.Table, row store.Row) error {
	var rv *store.ReferenceViolation
	if !errors.As(err, &rv) || rv.Column != "" {
		return err
	}
	missing := func(stmt sqlbuild.Stmt) (bool, error) {
		var one int
		err := t.conn.QueryRow(ctx, stmt).Scan(&one)
		if errors.Is(err, store.ErrNotFound) {
			return true, nil
		}
		return false, err
	}
	gone, perr := missing(t.build.CustomerExists(customerID))
	switch {
	case perr != nil:
		return errors.Join(err, perr)
	case gone:
		return &store.ReferenceViolation{Column: "customer_id"}
	case s == nil:
		return err
	}
	for _, r := range s.References(row) {
		gone, perr := missing(r.Target.Exists(customerID, r.ID))
		switch {
		case perr != nil:
			return errors.Join(err, perr)
		case gone:
			return &store.ReferenceViolation{Column: r.Column}
		}
	}
	return err
}

// Version returns the customer's list version of res (0 before any write).
// A transaction that has written the table takes its version first, so it
// sees its own writes' version.
func (t *Tx) Version(ctx context.Context, customerID string, res *schema.Resource) (int64, error) {
	s, err := t.build.Table(res)
	if err != nil {
		return 0, err
	}
	key := versionKey{customerID, s}
	if v, ok := t.versions[key]; ok {
		if v != pendingSeq {
			return v, nil
		}
		if err := t.takeVersion(ctx, key); err != nil {
			return 0, err
		}
		return t.versions[key], nil
	}
	return ScanVersion(t.conn.QueryRow(ctx, t.build.Version(customerID, s.Name())))
}

// ScanVersion reads a list version from the row of sqlbuild's Version
// statement: a customer with no row for the table is at version 0.
func ScanVersion(r sqlbuild.Scanner) (int64, error) {
	var v int64
	err := r.Scan(&v)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	return v, err
}

// Insert stores a new row.
func (t *Tx) Insert(ctx context.Context, customerID string, res *schema.Resource, row store.Row) error {
	_, err := t.writeRow(ctx, customerID, res, row, (*sqlbuild.Table).Insert)
	return err
}

// Update replaces a row's clear columns and sealed value.
func (t *Tx) Update(ctx context.Context, customerID string, res *schema.Resource, row store.Row) error {
	n, err := t.writeRow(ctx, customerID, res, row, (*sqlbuild.Table).Update)
	if err != nil {
		return err
	}
	return oneRow(n)
}

// writeRow runs the statement stmt writes for row, stamped with the
// transaction's list version, and returns the rows it changed.
func (t *Tx) writeRow(ctx context.Context, customerID string, res *schema.Resource, row store.Row,
	stmt func(*sqlbuild.Table, string, int64, store.Row) (sqlbuild.Stmt, error)) (int64, error) {
	s, seq, err := t.write(customerID, res)
	if err != nil {
		return 0, err
	}
	st, err := stmt(s, customerID, seq, row)
	if err != nil {
		return 0, err
	}
	n, err := t.conn.Exec(ctx, st)
	if s.FTSIndexed() && err == nil && n > 0 {
		t.tokenWrites = append(t.tokenWrites, tokenWrite{s, sqlbuild.TokenWrite{CustomerID: customerID, ID: row.ID, Search: row.Search}})
	}
	return n, t.reference(ctx, err, customerID, s, row)
}

// Delete deletes a row.
func (t *Tx) Delete(ctx context.Context, customerID string, res *schema.Resource, id string) error {
	s, _, err := t.write(customerID, res)
	if err != nil {
		return err
	}
	n, err := t.conn.Exec(ctx, s.Delete(customerID, id))
	if err != nil {
		return err
	}
	return oneRow(n)
}

func oneRow(n int64) error {
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// Get returns a row.
func (t *Tx) Get(ctx context.Context, customerID string, res *schema.Resource, id string, lock store.Lock) (store.Row, error) {
	s, err := t.build.Table(res)
	if err != nil {
		return store.Row{}, err
	}
	if t.view {
		return s.Scan(t.conn.QueryRow(ctx, s.Get(customerID, id)))
	}
	return s.Scan(t.conn.QueryRow(ctx, s.Locked(customerID, id, lock)))
}

// LockAncestry takes the customer's lock on res's acyclic links
// (sqlbuild.Table.LockAncestry).
func (t *Tx) LockAncestry(ctx context.Context, customerID string, res *schema.Resource) error {
	return t.lock(ctx, res, func(s *sqlbuild.Table) (sqlbuild.Stmt, bool) { return s.LockAncestry(customerID) })
}

// LockRows holds the rows of ids as store.ForUpdate, in the order of
// their ids (sqlbuild.Table.LockRows).
func (t *Tx) LockRows(ctx context.Context, customerID string, res *schema.Resource, ids []string) error {
	return t.lock(ctx, res, func(s *sqlbuild.Table) (sqlbuild.Stmt, bool) { return s.LockRows(customerID, ids) })
}

// lock runs the locking statement stmt makes of res's table, where the
// engine has one (ok) and the transaction writes: a view locks nothing.
func (t *Tx) lock(ctx context.Context, res *schema.Resource, stmt func(*sqlbuild.Table) (sqlbuild.Stmt, bool)) error {
	s, err := t.build.Table(res)
	if err != nil {
		return err
	}
	st, ok := stmt(s)
	if !ok || t.view {
		return nil
	}
	_, err = t.conn.Exec(ctx, st)
	return err
}

// Exists reports whether the customer has a row of that id.
func (t *Tx) Exists(ctx context.Context, customerID string, res *schema.Resource, id string) (bool, error) {
	s, err := t.build.Table(res)
	if err != nil {
		return false, err
	}
	var one int
	err = t.conn.QueryRow(ctx, s.Exists(customerID, id)).Scan(&one)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Referencing lists the ids of res rows whose field f references target.
func (t *Tx) Referencing(ctx context.Context, customerID string, res *schema.Resource, f *schema.Field, target string) ([]string, error) {
	s, err := t.build.Table(res)
	if err != nil {
		return nil, err
	}
	stmt, err := s.Referencing(customerID, f, target)
	if err != nil {
		return nil, err
	}
	var ids []string
	err = t.conn.Query(ctx, stmt, func(r sqlbuild.Scanner) error {
		var id string
		if err := r.Scan(&id); err != nil {
			return err
		}
		ids = append(ids, id)
		return nil
	})
	return ids, err
}

// ClearReferences sets field f to null on every res row that references
// target.
func (t *Tx) ClearReferences(ctx context.Context, customerID string, res *schema.Resource, f *schema.Field, target string) error {
	s, seq, err := t.write(customerID, res)
	if err != nil {
		return err
	}
	stmt, err := s.ClearReferences(customerID, f, seq, target)
	if err != nil {
		return err
	}
	_, err = t.conn.Exec(ctx, stmt)
	return err
}

// List calls fn with each row the spec selects, in order.
func (t *Tx) List(ctx context.Context, customerID string, res *schema.Resource, spec store.ListSpec, fn func(store.Row) error) error {
	s, err := t.build.Table(res)
	if err != nil {
		return err
	}
	if len(spec.Match) > 0 && len(t.tokenWrites) > 0 {
		// Lists through tokens are reads' (View); here they would miss the
		// rows this transaction wrote, whose tokens finish writes.
		return errors.New("sqltx: a list through search tokens in a transaction that has written search-indexed rows")
	}
	stmt, err := s.List(customerID, spec)
	if err != nil {
		return err
	}
	query := t.conn.Query
	if spec.Limit == 0 {
		query = t.conn.Stream
	}
	list := func() error {
		return query(ctx, stmt, func(r sqlbuild.Scanner) error {
			row, err := s.Scan(r)
			if err != nil {
				return err
			}
			return fn(row)
		})
	}
	if len(spec.Match) > 0 {
		return t.conn.ByIndex(ctx, list)
	}
	return list()
}

// Larger reports whether the customer has more than n rows of res.
func (t *Tx) Larger(ctx context.Context, customerID string, res *schema.Resource, n int) (bool, error) {
	s, err := t.build.Table(res)
	if err != nil {
		return false, err
	}
	var count int
	err = t.conn.QueryRow(ctx, s.Larger(customerID, n)).Scan(&count)
	return count > n, err
}

// Unindexed counts the customer's res rows that have no search tokens
// (written before res was indexed).
func (t *Tx) Unindexed(ctx context.Context, customerID string, res *schema.Resource) (int, error) {
	s, err := t.build.Table(res)
	if err != nil {
		return 0, err
	}
	stmt, err := s.Unindexed(customerID)
	if err != nil {
		return 0, err
	}
	var n int
	err = t.conn.QueryRow(ctx, stmt).Scan(&n)
	return n, err
}

// Count counts the rows the conditions select.
func (t *Tx) Count(ctx context.Context, customerID string, res *schema.Resource, where []store.Condition) (int, error) {
	s, err := t.build.Table(res)
	if err != nil {
		return 0, err
	}
	stmt, err := s.Count(customerID, where)
	if err != nil {
		return 0, err
	}
	var n int
	err = t.conn.QueryRow(ctx, stmt).Scan(&n)
	return n, err
}

// Savepoint runs fn inside SAVEPOINT, rolling back to it when fn fails.
// An error inside fn aborts a PostgreSQL transaction; rolling back to the
// savepoint makes it usable again. What fn left for finish (versions,
// audit entries) is forgotten with its writes.
func (t *Tx) Savepoint(ctx context.Context, fn func() error) error {
	fnErr, err := t.savepoint(ctx, fn)
	return cmp.Or(err, fnErr)
}

// savepoint runs fn inside SAVEPOINT and returns fn's error apart from the
// transaction's: when err is set, the savepoint could not be taken, rolled
// back or released, and the transaction can't go on.
func (t *Tx) savepoint(ctx context.Context, fn func() error) (fnErr, err error) {
	if err := t.conn.ExecLater(ctx, sqlbuild.Stmt{SQL: sqlbuild.Savepoint}); err != nil {
		return nil, err
	}
	versions, entries, tokenWrites := maps.Clone(t.versions), len(t.entries), len(t.tokenWrites)
	if fnErr := fn(); fnErr != nil {
		if _, err := t.conn.Exec(ctx, sqlbuild.Stmt{SQL: sqlbuild.RollbackTo}); err != nil {
			return fnErr, err
		}
		t.versions = versions
		clear(t.entries[entries:])
		t.entries = t.entries[:entries]
		clear(t.tokenWrites[tokenWrites:])
		t.tokenWrites = t.tokenWrites[:tokenWrites]
		if err := t.conn.ExecLater(ctx, sqlbuild.Stmt{SQL: sqlbuild.ReleaseSavepoint}); err != nil {
			return fnErr, err
		}
		return fnErr, nil
	}
	return nil, t.conn.ExecLater(ctx, sqlbuild.Stmt{SQL: sqlbuild.ReleaseSavepoint})
}

// Request is one caller's transaction function, run in a batch. Make it
// with NewRequest.
type Request struct {
	Ctx  context.Context
	Fn   func(store.Tx) error
	turn *turn
}

// NewRequest returns the request to run fn for a caller whose context is
// ctx.
func NewRequest(ctx context.Context, fn func(store.Tx) error) Request {
	return Request{Ctx: ctx, Fn: fn, turn: new(turn)}
}

// turn settles a race between a request's caller and the batch holding
// it once the caller's context ends: either the batch has begun running
// the request, and its caller waits for the outcome, or the caller
// leaves, and the request never runs. Without it a caller answered that
// its time was up could see its request commit after all (and a client
// told to send a create again would create it twice).
type turn struct{ state atomic.Int32 }

// The states of a turn.
const (
	turnWaiting int32 = iota
	turnRunning
	turnLeft
)

// start reports whether the batch may run r (nil), or r's context's error:
// its caller has left, or is about to. A request that ran before may run
// again while its context lasts (PostgreSQL runs the requests of a failed
// batch again, each alone; its caller is waiting for that outcome).
func (r Request) start() error {
	if r.Ctx.Err() == nil && (r.turn.state.CompareAndSwap(turnWaiting, turnRunning) || r.turn.state.Load() == turnRunning) {
		return nil
	}
	// The turn was left, which its caller does only once its context
	// has ended: so the context's error is set.
	return r.Ctx.Err()
}

// Leave is the group commit's Config.Leave: it reports whether r's caller
// may leave, because no batch has begun running r; r then never runs.
func Leave(r Request) bool {
	return r.turn.state.CompareAndSwap(turnWaiting, turnLeft)
}

// MaxBatchRows bounds the rows of the requests that share a transaction
// (store.WriteRows): a request writing more runs in a transaction alone.
const MaxBatchRows = 1000

// Rows weighs a request for the group commit: the rows it writes.
func Rows(r Request) int { return store.WriteRows(r.Ctx) }

// RunBatch runs the requests of a batch in one transaction, tx being the
// store.Tx the engine wraps t in: each in its own savepoint when there are
// several, so that a failing request undoes only its own writes. errs[i]
// gets request i's error; a request whose context has ended before its
// turn is not run (its caller has stopped waiting, and was answered that
// its time was up), and the caller of one that has begun to run waits for
// the outcome (Leave). Then it finishes the transaction (finish) and
// has link link the audit entries to their chains. It reports whether
// anything is left to commit, and returns an error when the transaction
// can't go on, which fails the whole batch.
func (t *Tx) RunBatch(ctx context.Context, tx store.Tx, batch []Request, errs []error,
	link func(context.Context, []*audit.Entry) error) (commit bool, err error) {
	if len(batch) == 1 {
		if errs[0] = batch[0].start(); errs[0] == nil {
			errs[0] = batch[0].Fn(tx)
		}
		commit = errs[0] == nil
	} else {
		for i, r := range batch {
			if errs[i] = r.start(); errs[i] != nil {
				continue // its caller has stopped waiting: not written
			}
			var fnErr error
			if fnErr, err = t.savepoint(r.Ctx, func() error { return r.Fn(tx) }); err != nil {
				// The transaction can't go on, and nothing of it
				// commits; the request's own error may say why (SQLite
				// undoes a whole transaction that a full disk failed),
				// and so whether the batch may be sent again.
				return false, errors.Join(err, fnErr)
			}
			errs[i] = fnErr
			commit = commit || fnErr == nil
		}
	}
	if !commit {
		return false, nil
	}
	entries, err := t.finish(ctx)
	if err != nil {
		return false, err
	}
	return true, link(ctx, entries)
}
