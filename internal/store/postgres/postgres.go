// Package postgres is the server store: a pgx connection pool on one
// PostgreSQL database (15 or later). It behaves like the SQLite store:
// the same tables, the same list versions, the same errors.
//
// Reads run in READ ONLY, REPEATABLE READ transactions, so a list, its
// count and the list version come from one snapshot. Writes run in READ
// COMMITTED transactions: uniqueness is left to the constraints, and the
// list-version bump (INSERT ... ON CONFLICT DO UPDATE on one row per
// customer and table) holds that row's lock until commit, so concurrent
// writers of a customer's table get their versions in commit order. The
// bump, and the lock of the customer's audit chain, are a transaction's
// last statements (sqltx.Tx.RunBatch), and concurrent writes of a process
// share transactions (group commit, see Update), so a customer's writers
// queue only for those statements and the commit, once per batch.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"accounts/internal/schema"
	"accounts/internal/store"
	"accounts/internal/store/dialect"
	"accounts/internal/store/group"
	"accounts/internal/store/pgsafe"
	"accounts/internal/store/sqlbuild"
	"accounts/internal/store/sqltx"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

var _ store.Store = (*DB)(nil)

// DB is a store.Store on a PostgreSQL database.
type DB struct {
	pool       *pgxpool.Pool
	migrations []store.Migration
	// migrated are the migrations Open applied.
	migrated []string
	// build writes the statements.
	build *sqlbuild.Builder
	// uniqueColumns maps "table.constraint" of every unique and primary key
	// constraint to its last column, the one a violation is reported on.
	uniqueColumns map[string]string
	// writes gathers concurrent Updates into shared transactions.
	writes *group.Committer[sqltx.Request]
	// heads are the audit chains' heads as this process last linked them.
	heads knownHeads
}

// DefaultConnectTimeout bounds opening a connection when the URL sets no
// connect_timeout, so requests fail fast while the server is down (the pool
// connects again by itself once it is back).
const DefaultConnectTimeout = 3 * time.Second

// migrationLock is the pg_advisory_lock key that serializes migrations
// between processes opening the database at once ("accounts" in ASCII).
const migrationLock int64 = 0x6163636f756e7473

// Open connects to the database at url (a postgres:// URL), refuses a
// server whose settings can lose acknowledged writes, and applies pending
// migrations. Tables are created in the connection's current schema (the
// first of its search_path).
func Open(ctx context.Context, url string, catalog *schema.Catalog) (*DB, error) {
	migrations, err := store.LoadMigrations(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	cfg, err := poolConfig(url)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: creating the connection pool: %w", err)
	}
	db := &DB{pool: pool, migrations: migrations, build: sqlbuild.New(catalog, dialect.Postgres)}
	db.writes = group.New(group.Config[sqltx.Request]{MaxBatch: maxWriteBatch, MaxInFlight: writeBatchesInFlight,
		Weight: sqltx.Rows, MaxWeight: sqltx.MaxBatchRows, Leave: sqltx.Leave}, db.commitBatch)
	if err := db.open(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

func (db *DB) open(ctx context.Context) error {
	if err := CheckDurability(func(setting string) (v string, err error) {
		err = db.pool.QueryRow(ctx, "SHOW "+setting).Scan(&v)
		return v, err
	}); err != nil {
		return err
	}
	if err := db.migrate(ctx); err != nil {
		return err
	}
	cols, err := loadUniqueColumns(ctx, db.pool)
	if err != nil {
		return err
	}
	db.uniqueColumns = cols
	return nil
}

// ErrURL is the error of a database URL that does not parse.
var ErrURL = errors.New("postgres: the database URL does not parse")

// DefaultMaxConns is the connection pool's size unless the URL sets
// pool_max_conns.
const DefaultMaxConns = 16

// poolConfig parses url and sets the defaults the store relies on.
func poolConfig(url string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parse error quotes the URL, which may hold a password.
		return nil, ErrURL
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	if !strings.Contains(url, "pool_max_conns") {
		// An expensive list holds its connection while it streams: the
		// pool must outnumber the expensive requests a process admits
		// (limit.Config.Expensive), so that short requests still find one.
		cfg.MaxConns = max(cfg.MaxConns, DefaultMaxConns)
	}
	return cfg, nil
}

// ErrNotDurable is the error of a server that acknowledges commits it may
// lose (CheckDurability).
var ErrNotDurable = errors.New("postgres: acknowledged writes could be lost in a crash")

// CheckDurability refuses a server that acknowledges commits it may lose:
// with fsync off a crash can lose (or corrupt) committed data, and with
// synchronous_commit off a commit is acknowledged before its WAL is
// flushed. ("local" waits for the local flush, as "on" does without
// synchronous standbys, so it is accepted.) show reads a setting as
// SHOW does, for the session the store (or the key store) will use, so
// that a value the URL's options or the database's own settings give
// counts too.
func CheckDurability(show func(setting string) (string, error)) error {
	for _, setting := range []string{"fsync", "synchronous_commit"} {
		v, err := show(setting)
		if err != nil {
			return fmt.Errorf("postgres: reading setting %s: %w", setting, pgsafe.Err(err))
		}
		if v == "off" {
			return fmt.Errorf("%w: the server has %s=off; turn %s on", ErrNotDurable, setting, setting)
		}
	}
	return nil
}

// migrate applies pending migrations, each in its own transaction, while
// holding an advisory lock on one connection, so that processes opening
// the database at the same time apply each migration once.
func (db *DB) migrate(ctx context.Context) (err error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: connecting: %w", pgsafe.Err(err))
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		conn.Release()
		return fmt.Errorf("postgres: taking the migration lock: %w", pgsafe.Err(err))
	}
	defer func() {
		// The lock belongs to the session: if it can't be released, end
		// the session instead of returning it to the pool still locked.
		if _, uerr := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLock); uerr != nil {
			conn.Hijack().Close(context.WithoutCancel(ctx))
			return
		}
		conn.Release()
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)`); err != nil {
		return fmt.Errorf("postgres: creating the migration table: %w", pgsafe.Err(err))
	}
	for _, m := range db.migrations {
		applied := false
		err := pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE version = $1`, m.Version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			// Without arguments pgx sends the simple protocol, which
			// runs a file of several statements.
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.Version, m.Name, time.Now().UTC().Truncate(time.Microsecond))
			applied = err == nil
			return err
		})
		if err != nil {
			return fmt.Errorf("postgres: applying migration %s: %w", m.Name, pgsafe.Err(err))
		}
		if applied {
			db.migrated = append(db.migrated, m.Name)
		}
	}
	return nil
}

// Migrated returns the migrations Open applied.
func (db *DB) Migrated() []string { return db.migrated }

// CountCustomers counts the customers in the database at url (its current
// schema), and those of them whose ids are among, without creating,
// migrating or changing anything: 0 when it has no customer table yet. A
// command asks before it decides whether a new master key may be made, and
// whether a key store is the database's.
func CountCustomers(ctx context.Context, url string, among []string) (total, found int, err error) {
	cfg, err := poolConfig(url)
	if err != nil {
		return 0, 0, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return 0, 0, fmt.Errorf("postgres: connecting: %w", pgsafe.Err(err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('customers') IS NOT NULL`).Scan(&exists); err != nil || !exists {
		return 0, 0, pgsafe.Err(err)
	}
	err = conn.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE id = ANY($1::text[])) FROM customers`, among).Scan(&total, &found)
	if err != nil {
		return 0, 0, fmt.Errorf("postgres: counting customers: %w", pgsafe.Err(err))
	}
	return total, found, nil
}

// loadUniqueColumns reads, for the current schema's unique, primary key and
// foreign key constraints, the last column of each: the column a violation
// is reported on, as the SQLite store names it (customer_id comes first in
// every key).
func loadUniqueColumns(ctx context.Context, pool *pgxpool.Pool) (map[string]string, error) {
	rows, err := pool.Query(ctx, `SELECT t.relname, c.conname, a.attname
		FROM pg_constraint c
		JOIN pg_class t ON t.oid = c.conrelid
		JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[array_upper(c.conkey, 1)]
		WHERE c.contype IN ('p', 'u', 'f') AND t.relnamespace = to_regnamespace(current_schema())`)
	if err != nil {
		return nil, fmt.Errorf("postgres: reading unique constraints: %w", pgsafe.Err(err))
	}
	out := map[string]string{}
	for rows.Next() {
		var table, constraint, column string
		if err := rows.Scan(&table, &constraint, &column); err != nil {
			rows.Close()
			return nil, fmt.Errorf("postgres: reading unique constraints: %w", pgsafe.Err(err))
		}
		out[table+"."+constraint] = column
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: reading unique constraints: %w", pgsafe.Err(err))
	}
	return out, nil
}

// Ready checks that the database answers, every migration is applied, and
// no write batch has been committing for longer than store.WriteStall.
func (db *DB) Ready(ctx context.Context) error {
	var n int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		return pgsafe.Err(err)
	}
	if n != len(db.migrations) {
		return fmt.Errorf("postgres: schema has %d of %d migrations", n, len(db.migrations))
	}
	if db.writes.Stalled(store.WriteStall) {
		return store.ErrWritesStalled
	}
	return nil
}

// Close closes the pool, waiting for connections in use to be returned.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

var (
	readOnly  = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
	readWrite = pgx.TxOptions{IsoLevel: pgx.ReadCommitted, AccessMode: pgx.ReadWrite}
)

func (db *DB) inTx(ctx context.Context, opts pgx.TxOptions, fn func(pgx.Tx) error) error {
	var tx pgx.Tx
	err := db.whileConnectionLost(func() (err error) {
		tx, err = db.pool.BeginTx(ctx, opts)
		return pgsafe.Err(err)
	})
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // a no-op once committed
	if err := fn(tx); err != nil {
		return err
	}
	if err := pgsafe.Err(tx.Commit(ctx)); err != nil {
		if opts.AccessMode != pgx.ReadOnly {
			return store.OutcomeUnknown(err)
		}
		return err
	}
	return nil
}

// View runs fn in a read-only transaction: one consistent snapshot.
func (db *DB) View(ctx context.Context, fn func(store.Tx) error) error {
	return db.inTx(ctx, readOnly, func(tx pgx.Tx) error { return fn(db.newView(tx)) })
}

// Get reads one row by a single statement on a pooled connection (pgx
// keeps it prepared there), in PostgreSQL's implicit transaction of that
// statement: one round trip instead of BEGIN, SELECT and COMMIT.
func (db *DB) Get(ctx context.Context, customerID string, res *schema.Resource, id string) (store.Row, error) {
	t, err := db.build.Table(res)
	if err != nil {
		return store.Row{}, err
	}
	s := t.Get(customerID, id)
	var r store.Row
	err = db.whileConnectionLost(func() (err error) {
		r, err = t.Scan(row{db, db.pool.QueryRow(ctx, s.SQL, s.Args...)})
		return err
	})
	return r, err
}

// Version reads a list version by a single statement on a pooled
// connection: one round trip instead of BEGIN, SELECT and COMMIT.
func (db *DB) Version(ctx context.Context, customerID string, res *schema.Resource) (int64, error) {
	t, err := db.build.Table(res)
	if err != nil {
		return 0, err
	}
	s := db.build.Version(customerID, t.Name())
	var v int64
	err = db.whileConnectionLost(func() (err error) {
		v, err = sqltx.ScanVersion(row{db, db.pool.QueryRow(ctx, s.SQL, s.Args...)})
		return err
	})
	return v, err
}

// The bounds of the write batches: at most maxWriteBatch Updates share a
// transaction, and writeBatchesInFlight transactions run at once (a
// quarter of the default pool, which reads need too). Batches run side by
// side up to their last statements (sqltx.Tx.RunBatch), where batches
// writing the same customer's tables queue.
const (
	maxWriteBatch        = 64
	writeBatchesInFlight = DefaultMaxConns / 4
)

// batchTimeout bounds one batch's transaction, whatever its requests'
// contexts: it carries the writes of many requests. (A variable for a
// test's shorter one.)
var batchTimeout = 30 * time.Second

// Update runs fn in a read-write transaction and returns once it has
// committed. Concurrent Updates share transactions (group commit): each
// runs in a savepoint of one, so one failing undoes its own writes only,
// and each returns only once the shared transaction has committed. So fn
// must do its validation, sealing and other work that needs no
// transaction before, not inside. fn may run more than once (see
// commitBatch): it must leave nothing behind but through the transaction.
// When ctx ends before fn's turn has come, Update returns its error at
// once and fn never runs; once fn has begun, Update waits for its batch
// (at most batchTimeout, and retries).
func (db *DB) Update(ctx context.Context, fn func(store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.writes.Do(ctx, sqltx.NewRequest(ctx, fn))
}

// commitBatch runs a batch of Updates in one transaction. A transaction
// holding the row locks of many requests can deadlock with another one
// (of this process or another) that takes some of the same rows in the
// other order; PostgreSQL then aborts one of them. The requests a deadlock
// (or a serialization failure) failed run again, each in a transaction of
// its own, which holds only its own rows: all of them when the shared
// transaction was aborted (what the others saw in it never committed),
// else those whose own statements were chosen to fail. A transaction of
// one request can deadlock too (two bulk writes of the same rows in
// opposite orders): it runs again, as long as it keeps being chosen, up
// to retryAttempts times. So does a request whose connection the server
// had ended (a restart, a failover) before the COMMIT was sent, on the
// next connection (whileConnectionLost); one lost at its COMMIT is not
// run again: whether it committed is unknown, and the caller is told it
// failed.
func (db *DB) commitBatch(batch []sqltx.Request, errs []error) error {
	err := db.commitShared(batch, errs)
	for i, r := range batch {
		if !retryable(err) && !retryable(errs[i]) {
			continue
		}
		errs[i] = whileRetryable(r.Ctx, func() error {
			return db.whileConnectionLost(func() error {
				solo := []error{nil}
				if err := db.commitShared([]sqltx.Request{r}, solo); err != nil {
					return err
				}
				return solo[0]
			})
		})
	}
	if retryable(err) {
		return nil
	}
	return err
}

// retryable reports whether err is PostgreSQL's deadlock or serialization
// failure, or a connection found gone before the commit: the transaction
// did nothing wrong, committed nothing, and may run again.
func retryable(err error) bool {
	var e *pgsafe.Error
	return errors.As(err, &e) && (e.Code == "40P01" || e.Code == "40001") || lostBeforeCommit(err)
}

// lostBeforeCommit reports whether err is a connection found gone before
// the transaction's COMMIT was sent: nothing of it committed.
func lostBeforeCommit(err error) bool {
	return connectionLost(err) && !store.IsOutcomeUnknown(err)
}

// connectionLost reports whether err says the statement's connection was
// gone: the server ended its backend (57P01 admin_shutdown, 57P02
// crash_shutdown, 57P03 cannot_connect_now: a restart, a failover, an
// administrator's pg_terminate_backend), or pgx found the connection
// closed and sent nothing (pgsafe.SentNothing; under load, a connection
// whose backend was ended is met so). The pool drops such a connection,
// and the next one may be alive; the pool's idle connections learn of it
// only when used.
func connectionLost(err error) bool {
	var e *pgsafe.Error
	return errors.As(err, &e) && (e.Code == "57P01" || e.Code == "57P02" || e.Code == "57P03") || pgsafe.SentNothing(err)
}

// whileConnectionLost runs op (a read, or a transaction) again while it
// fails on a connection the server ended before anything committed: at
// most once for each of the pool's connections (each is dropped as it
// fails, and the pool may hold as many found gone at once), and once more.
func (db *DB) whileConnectionLost(op func() error) error {
	for attempt := int32(0); ; attempt++ {
		err := op()
		if !lostBeforeCommit(err) || attempt >= db.pool.Config().MaxConns {
			return err
		}
	}
}

// The runs of a transaction that PostgreSQL keeps aborting as a deadlock
// victim: at most retryAttempts, the n-th after a pause of about n times
// retryPause, drawn at random so that two that deadlocked do not meet
// again in step. (PostgreSQL takes deadlock_timeout, a second by default,
// to find a deadlock: the pauses are small beside it.)
const (
	retryAttempts = 5
	retryPause    = 20 * time.Millisecond
)

// whileRetryable runs op, and again while it fails as retryable, up to
// retryAttempts runs in all or until ctx ends; it returns the last error.
// One still retryable then is unavailability (the API's 503, with
// Retry-After), not the service's failure: none of the runs committed
// anything, and the request may be sent again.
func whileRetryable(ctx context.Context, op func() error) error {
	for attempt := 1; ; attempt++ {
		err := op()
		if !retryable(err) {
			return err
		}
		if attempt == retryAttempts {
			return store.MarkUnavailable(err)
		}
		pause := time.Duration(attempt)*retryPause/2 + rand.N(time.Duration(attempt)*retryPause)
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return store.MarkUnavailable(err)
		}
	}
}

// commitShared runs a batch of Updates in one transaction.
func (db *DB) commitShared(batch []sqltx.Request, errs []error) error {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	pc, err := db.pool.Acquire(ctx)
	if err != nil {
		return pgsafe.Err(err)
	}
	defer pc.Release() // destroys a connection left in a transaction
	t := db.newTxn(pc, ctx)
	t.conn.begin()
	commit, err := t.RunBatch(ctx, t, batch, errs, t.linkAudit)
	if err == nil && commit {
		if err = t.conn.commit(ctx); err != nil {
			err = store.OutcomeUnknown(err)
		}
	}
	if err != nil || !commit {
		t.conn.rollback(ctx)
	}
	if ctx.Err() != nil {
		// The batch ran out of time (a database gone silent, a lock
		// held elsewhere): what failed for it before the COMMIT went
		// out committed nothing, and may be sent again.
		for i := range errs {
			errs[i] = timedOutBeforeCommit(ctx, errs[i])
		}
		err = timedOutBeforeCommit(ctx, err)
	}
	return err
}

// timedOutBeforeCommit marks err as unavailability when ctx's end caused
// it, before a COMMIT went out (whose outcome stays unknown).
func timedOutBeforeCommit(ctx context.Context, err error) error {
	if err != nil && errors.Is(err, ctx.Err()) && !store.IsOutcomeUnknown(err) {
		return store.MarkUnavailable(err)
	}
	return err
}

// classify turns a unique violation into a *store.UniqueViolation and a
// foreign key violation into a *store.ReferenceViolation, each naming the
// constrained column, and sanitizes any other server error.
func (db *DB) classify(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		col, ok := db.uniqueColumns[pe.TableName+"."+pe.ConstraintName]
		switch {
		case ok && pe.Code == "23505":
			return &store.UniqueViolation{Column: col}
		case ok && pe.Code == "23503":
			return &store.ReferenceViolation{Column: col}
		}
	}
	return pgsafe.Err(err)
}

// Dialect is the SQL dialect the store writes its statements in.
func (db *DB) Dialect() dialect.Dialect { return dialect.Postgres }

// TableColumns reads a table's columns from the database (its current
// schema), for checking the tables the migrations made against the
// declarations (storetest).
func (db *DB) TableColumns(ctx context.Context, table string) ([]sqlbuild.TableColumn, error) {
	return collect(ctx, db, db.build.Columns(table), sqlbuild.ScanTableColumn)
}

// Explain returns the plan PostgreSQL makes for stmt, one line per row of
// EXPLAIN (storetest's plan checks): after ANALYZE, as autovacuum keeps
// the statistics of a live database, and with sequential scans priced out
// of reach (enable_seqscan off), so that a plan that still scans the table
// has no index that serves the statement, however large it grows.
func (db *DB) Explain(ctx context.Context, stmt sqlbuild.Stmt) ([]string, error) {
	// The store's own tables: ANALYZE alone would read every schema of
	// the database.
	var tables []string
	rows, err := db.pool.Query(ctx, "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = current_schema()")
	if err == nil {
		tables, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		return nil, pgsafe.Err(err)
	}
	if _, err := db.pool.Exec(ctx, "ANALYZE "+strings.Join(tables, ", ")); err != nil {
		return nil, pgsafe.Err(err)
	}
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return nil, pgsafe.Err(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
		return nil, pgsafe.Err(err)
	}
	rows, err = tx.Query(ctx, "EXPLAIN "+stmt.SQL, stmt.Args...)
	if err != nil {
		return nil, pgsafe.Err(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return nil, pgsafe.Err(err)
		}
		out = append(out, line)
	}
	return out, pgsafe.Err(rows.Err())
}
