package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"accounts/internal/store"
	"accounts/internal/store/sqlbuild"
	"accounts/internal/store/sqltx"
)

// txn is a store.Tx on one SQLite transaction: sqltx's methods on conn,
// and this store's linking of audit entries (audit.go).
type txn struct {
	*sqltx.Tx
	db   *DB
	conn conn
}

func (db *DB) newTxn(tx *sql.Tx, prepared *preparedSet, shared bool) *txn {
	c := conn{tx: tx, prepared: prepared, shared: shared}
	return &txn{Tx: sqltx.New(c, db.build), db: db, conn: c}
}

// conn runs statements in one transaction: the fixed ones on the
// statements prepared at open (prepared.go), the others (lists, counts)
// as they are.
type conn struct {
	tx       *sql.Tx
	prepared *preparedSet
	// shared is set in a transaction that several requests share (a
	// batch of writes): their statements then run whatever becomes of the
	// context of the request that runs them. The driver interrupts a
	// statement whose context ends, and SQLite rolls back the whole
	// transaction of an interrupted write, the other requests' writes
	// with it; a request whose client left still finishes its writes,
	// which take no longer than any other's.
	shared bool
}

// detach returns the context a statement runs under.
func (c conn) detach(ctx context.Context) context.Context {
	if c.shared {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

func (c conn) Exec(ctx context.Context, s sqlbuild.Stmt) (int64, error) {
	ctx = c.detach(ctx)
	var r sql.Result
	var err error
	if ps := c.prepared.stmt(ctx, c.tx, s.SQL); ps != nil {
		r, err = ps.ExecContext(ctx, s.Args...)
	} else {
		r, err = c.tx.ExecContext(ctx, s.SQL, s.Args...)
	}
	if err != nil {
		return 0, classify(err)
	}
	return r.RowsAffected()
}

// ExecLater is Exec: the writer is in this process.
func (c conn) ExecLater(ctx context.Context, s sqlbuild.Stmt) error {
	_, err := c.Exec(ctx, s)
	return err
}

func (c conn) QueryRow(ctx context.Context, s sqlbuild.Stmt) sqlbuild.Scanner {
	ctx = c.detach(ctx)
	if ps := c.prepared.stmt(ctx, c.tx, s.SQL); ps != nil {
		return row{ps.QueryRowContext(ctx, s.Args...)}
	}
	return row{c.tx.QueryRowContext(ctx, s.SQL, s.Args...)}
}

func (c conn) Query(ctx context.Context, s sqlbuild.Stmt, fn func(sqlbuild.Scanner) error) error {
	ctx = c.detach(ctx)
	var rows *sql.Rows
	var err error
	if ps := c.prepared.stmt(ctx, c.tx, s.SQL); ps != nil {
		rows, err = ps.QueryContext(ctx, s.Args...)
	} else {
		rows, err = c.tx.QueryContext(ctx, s.SQL, s.Args...)
	}
	if err != nil {
		return classify(err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return classify(rows.Err())
}

// Stream is Query: SQLite steps through a query's rows as they are
// taken, and stops reading when the caller stops.
func (c conn) Stream(ctx context.Context, s sqlbuild.Stmt, fn func(sqlbuild.Scanner) error) error {
	return c.Query(ctx, s, fn)
}

// ByIndex runs fn: SQLite plans without statistics, and the statements
// are written so that it takes the index (see sqlbuild's token lookups).
func (c conn) ByIndex(_ context.Context, fn func() error) error { return fn() }

// row is a single-row result whose Scan reports no row as
// store.ErrNotFound.
type row struct{ r *sql.Row }

func (r row) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	return classify(err)
}
