package postgres

import (
	"cmp"
	"context"
	"errors"
	"strconv"
	"sync/atomic"

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
	db   *DB
	conn *conn
}

// querier is what a transaction's statements run on: a pgx.Tx (a read
// transaction pgx began), or a pooled connection in the transaction that
// conn began itself (a batch of writes, whose BEGIN goes with its first
// statement and whose last statements go with its COMMIT).
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// newTxn wraps tx. shared, when not nil, is the context every statement
// runs under, whatever the context it is given: that of a transaction
// that several requests share (a batch of writes). pgx closes a
// connection whose query's context ends, which would end the transaction
// of every request of the batch; so a request whose client left still
// finishes its writes, and the batch's context bounds them all.
func (db *DB) newTxn(tx querier, shared context.Context) *txn {
	c := &conn{db: db, tx: tx, shared: shared}
	return &txn{Tx: sqltx.New(c, db.build), db: db, conn: c}
}

// newView is newTxn for a read-only transaction.
func (db *DB) newView(tx querier) *txn {
	c := &conn{db: db, tx: tx}
	return &txn{Tx: sqltx.NewView(c, db.build), db: db, conn: c}
}

// conn runs statements in one transaction. pgx prepares each statement
// once per connection and keeps it (its default statement cache), so
// fixed statements are parsed once per connection.
type conn struct {
	db     *DB
	tx     querier
	shared context.Context
	// deferred are the statements whose results nothing reads, not sent
	// yet: each goes with the statement after it, in one round trip, and a
	// savepoint released with no statement inside is never sent. A batch
	// of writes runs each request in a savepoint (sqltx.RunBatch), and a
	// request that creates runs two statements of its own, so the
	// savepoint statements sent alone were half its round trips, each
	// waited for in turn. A batch's BEGIN goes with its first statement;
	// its list versions' stamps, audit entries and heads go with the
	// statement after them or with its COMMIT (commit), in the part of the
	// transaction where writers of one customer queue. A deferred statement
	// that fails fails the statement it went with. Every statement of the
	// transaction goes through conn, so none passes those before it.
	deferred []sqlbuild.Stmt
}

// beginWrite begins a batch of writes' transaction (conn.begin).
const beginWrite = "BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE"

// begin opens the transaction of a batch of writes on a pooled connection:
// its BEGIN waits to go with the first statement.
func (c *conn) begin() {
	c.deferred = append(c.deferred[:0], sqlbuild.Stmt{SQL: beginWrite})
}

// later defers s, to go with the next statement or the COMMIT.
func (c *conn) later(s sqlbuild.Stmt) {
	if n := len(c.deferred); s.SQL == sqlbuild.ReleaseSavepoint && n > 0 && c.deferred[n-1].SQL == sqlbuild.Savepoint {
		c.deferred = c.deferred[:n-1] // an empty savepoint
		return
	}
	c.deferred = append(c.deferred, s)
}

// ExecLater defers s: its result is not needed, and its failure fails the
// statement it goes with (or the COMMIT). A RELEASE or SAVEPOINT deferred
// before a ROLLBACK TO or COMMIT still takes effect in order; a RELEASE
// that follows its SAVEPOINT with nothing between drops both (later).
func (c *conn) ExecLater(_ context.Context, s sqlbuild.Stmt) error {
	c.later(s)
	return nil
}

// commit ends the transaction that begin opened, sending what was deferred
// with the COMMIT. A transaction PostgreSQL had aborted answers its COMMIT
// with ROLLBACK, which is an error here as in pgx.
func (c *conn) commit(ctx context.Context) error {
	tag, err := c.exec(ctx, sqlbuild.Stmt{SQL: "COMMIT"})
	if err != nil {
		return err
	}
	if tag.String() != "COMMIT" {
		return pgx.ErrTxCommitRollback
	}
	return nil
}

// rollback ends the transaction that begin opened, unless its BEGIN was
// never sent; what was deferred is dropped. It runs under ctx, the batch's
// (a server that does not answer can't hold it past the batch's time), and
// its error is not reported: the pool destroys a connection released
// inside a transaction.
func (c *conn) rollback(ctx context.Context) {
	begun := len(c.deferred) == 0 || c.deferred[0].SQL != beginWrite
	c.deferred = c.deferred[:0]
	if begun {
		c.tx.Exec(ctx, "ROLLBACK")
	}
}

// context returns the context a statement runs under.
func (c *conn) context(ctx context.Context) context.Context {
	if c.shared != nil {
		return c.shared
	}
	return ctx
}

// sendWithDeferred sends the deferred statements and then s in one batch,
// and returns the batch's results at s's, which the caller must close.
func (c *conn) sendWithDeferred(ctx context.Context, s sqlbuild.Stmt) (pgx.BatchResults, error) {
	b := &pgx.Batch{}
	for _, d := range c.deferred {
		b.Queue(d.SQL, d.Args...)
	}
	n := len(c.deferred)
	c.deferred = c.deferred[:0]
	b.Queue(s.SQL, s.Args...)
	br := c.tx.SendBatch(c.context(ctx), b)
	for range n {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return nil, c.db.classify(err)
		}
	}
	return br, nil
}

func (c *conn) Exec(ctx context.Context, s sqlbuild.Stmt) (int64, error) {
	tag, err := c.exec(ctx, s)
	return tag.RowsAffected(), err
}

// exec runs s now, with the deferred statements before it.
func (c *conn) exec(ctx context.Context, s sqlbuild.Stmt) (pgconn.CommandTag, error) {
	if len(c.deferred) > 0 {
		br, err := c.sendWithDeferred(ctx, s)
		if err != nil {
			return pgconn.CommandTag{}, err
		}
		tag, err := br.Exec()
		if err := cmp.Or(err, br.Close()); err != nil {
			return pgconn.CommandTag{}, c.db.classify(err)
		}
		return tag, nil
	}
	tag, err := c.tx.Exec(c.context(ctx), s.SQL, s.Args...)
	if err != nil {
		return pgconn.CommandTag{}, c.db.classify(err)
	}
	return tag, nil
}

func (c *conn) QueryRow(ctx context.Context, s sqlbuild.Stmt) sqlbuild.Scanner {
	if len(c.deferred) > 0 {
		br, err := c.sendWithDeferred(ctx, s)
		if err != nil {
			return failedRow{err}
		}
		return batchRow{row{c.db, br.QueryRow()}, br}
	}
	return row{c.db, c.tx.QueryRow(c.context(ctx), s.SQL, s.Args...)}
}

func (c *conn) Query(ctx context.Context, s sqlbuild.Stmt, fn func(sqlbuild.Scanner) error) error {
	var rows pgx.Rows
	if len(c.deferred) > 0 {
		br, err := c.sendWithDeferred(ctx, s)
		if err != nil {
			return err
		}
		defer br.Close()
		rows, err = br.Query()
		if err != nil {
			return c.db.classify(err)
		}
	} else {
		var err error
		if rows, err = c.tx.Query(c.context(ctx), s.SQL, s.Args...); err != nil {
			return c.db.classify(err)
		}
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return c.db.classify(rows.Err())
}

// ByIndex runs fn with sequential scans priced out of reach
// (enable_seqscan off for the transaction, then on again): PostgreSQL has
// no hint, and before ANALYZE has seen a table grow it reads the whole
// table for a lookup through the search tokens' GIN index.
func (c *conn) ByIndex(ctx context.Context, fn func() error) error {
	if _, err := c.Exec(ctx, sqlbuild.Stmt{SQL: "SET LOCAL enable_seqscan = off"}); err != nil {
		return err
	}
	fnErr := fn()
	if _, err := c.Exec(ctx, sqlbuild.Stmt{SQL: "SET LOCAL enable_seqscan = on"}); err != nil && fnErr == nil {
		return err
	}
	return fnErr
}

// cursors numbers the cursors of Stream, whose names must differ within a
// transaction.
var cursors atomic.Uint64

// The rows a Stream fetches at a time: few at first, since a page may
// need few, then more, so that a long stream costs few round trips.
const (
	firstFetch = 128
	maxFetch   = 4096
)

// Stream reads a query through a cursor. A query sent whole is planned to
// give all its rows at the least cost (a customer's rows sorted after
// reading them all, say) and its rows keep arriving when the caller has
// stopped: pgx reads every one of them off the connection before the next
// statement. A cursor is planned to give its first rows soon
// (cursor_tuple_fraction) and yields only the rows fetched.
func (c *conn) Stream(ctx context.Context, s sqlbuild.Stmt, fn func(sqlbuild.Scanner) error) error {
	ctx = c.context(ctx)
	name := "stream_" + strconv.FormatUint(cursors.Add(1), 10)
	if _, err := c.Exec(ctx, sqlbuild.Stmt{SQL: "DECLARE " + name + " NO SCROLL CURSOR FOR " + s.SQL, Args: s.Args}); err != nil {
		return err
	}
	for batch := firstFetch; ; batch = min(2*batch, maxFetch) {
		n := 0
		fetch := sqlbuild.Stmt{SQL: "FETCH " + strconv.Itoa(batch) + " FROM " + name}
		err := c.Query(ctx, fetch, func(r sqlbuild.Scanner) error {
			n++
			return fn(r)
		})
		if err != nil {
			// fn's error (or the fetch's) stands; the cursor goes with the
			// transaction if it can't be closed now.
			c.closeCursor(ctx, name)
			return err
		}
		if n < batch {
			return c.db.classify(c.closeCursor(ctx, name))
		}
	}
}

// closeCursor closes a Stream's cursor, which would otherwise last until
// the transaction ends.
func (c *conn) closeCursor(ctx context.Context, name string) error {
	_, err := c.tx.Exec(ctx, "CLOSE "+name)
	return err
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

// batchRow is a row read from a batch, which Scan closes.
type batchRow struct {
	row
	br pgx.BatchResults
}

func (r batchRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	return cmp.Or(err, r.db.classify(r.br.Close()))
}

// failedRow is a row whose statement could not be sent.
type failedRow struct{ err error }

func (r failedRow) Scan(...any) error { return r.err }

func oneRow(tag pgconn.CommandTag) error {
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}
