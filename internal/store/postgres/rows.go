package postgres

import (
	"context"
	"errors"

	"accounts/internal/store"
	"accounts/internal/store/sqlbuild"
	"accounts/internal/store/sqltx"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// txn is a store.Tx on one PostgreSQL transaction: sqltx's methods on
// conn, and this store's linking of audit entries (audit.go).
type txn struct {
	*sqltx.Tx
	db *DB
	tx pgx.Tx
}

// newTxn wraps tx. shared, when not nil, is the context every statement
// runs under, whatever the context it is given: that of a transaction
// that several requests share (a batch of writes). pgx closes a
// connection whose query's context ends, which would end the transaction
// of every request of the batch; so a request whose client left still
// finishes its writes, and the batch's context bounds them all.
func (db *DB) newTxn(tx pgx.Tx, shared context.Context) *txn {
	return &txn{Tx: sqltx.New(conn{db: db, tx: tx, shared: shared}, db.build), db: db, tx: tx}
}

// conn runs statements in one transaction. pgx prepares each statement
// once per connection and keeps it (its default statement cache), so
// fixed statements are parsed once per connection.
type conn struct {
	db     *DB
	tx     pgx.Tx
	shared context.Context
}

// context returns the context a statement runs under.
func (c conn) context(ctx context.Context) context.Context {
	if c.shared != nil {
		return c.shared
	}
	return ctx
}

func (c conn) Exec(ctx context.Context, s sqlbuild.Stmt) (int64, error) {
	tag, err := c.tx.Exec(c.context(ctx), s.SQL, s.Args...)
	if err != nil {
		return 0, c.db.classify(err)
	}
	return tag.RowsAffected(), nil
}

func (c conn) QueryRow(ctx context.Context, s sqlbuild.Stmt) sqlbuild.Scanner {
	return row{c.db, c.tx.QueryRow(c.context(ctx), s.SQL, s.Args...)}
}

func (c conn) Query(ctx context.Context, s sqlbuild.Stmt, fn func(sqlbuild.Scanner) error) error {
	rows, err := c.tx.Query(c.context(ctx), s.SQL, s.Args...)
	if err != nil {
		return c.db.classify(err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return c.db.classify(rows.Err())
}

// row is a single-row result whose Scan reports no row as
// store.ErrNotFound.
type row struct {
	db *DB
	r  pgx.Row
}

func (r row) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	return r.db.classify(err)
}

func oneRow(tag pgconn.CommandTag) error {
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}
