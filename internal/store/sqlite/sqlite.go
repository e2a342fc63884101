// Package sqlite is the embedded store: one SQLite file in WAL mode, one
// writer connection for requests' writes (write transactions begin
// IMMEDIATE, so other processes' writers queue instead of failing), one for
// migrations and administration, and a pool of read-only readers.
// Concurrent writes share the writer's transactions (group commit, see
// Update).
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"accounts/internal/audit"
	"accounts/internal/openfiles"
	"accounts/internal/schema"
	"accounts/internal/store"
	"accounts/internal/store/dialect"
	"accounts/internal/store/group"
	"accounts/internal/store/sqlbuild"
	"accounts/internal/store/sqltx"

	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// minReaders is the least number of reader connections. Reads hold one
// for as long as they read, and a list of a large customer reads for
// seconds; database/sql hands a freed connection to a random waiter, so
// once the pool is full a short read (authenticating a client, a GET by
// id) waits behind whatever else is waiting, in no order. So the pool is
// sized above the long reads that admission lets run at once — a customer
// may have 8 lists in progress (limit.Config.CustomerLists), the process 6
// expensive ones (limit.Config.Expensive) — with room for the short reads
// beside them. A reader
// costs a file handle or two and up to SQLite's page cache (2 MiB) once used.
const minReaders = 16

// DB is a store.Store on one SQLite file.
type DB struct {
	// writer commits Updates; admin applies migrations and runs the
	// administrative writes (customers, clients), which may change every
	// row of a customer in one statement (see writerPragmas).
	writer     *sql.DB
	admin      *sql.DB
	reader     *sql.DB
	migrations []store.Migration
	// migrated are the migrations Open applied.
	migrated []string
	// build writes the statements; the fixed ones are prepared on both
	// pools when the store opens.
	build      *sqlbuild.Builder
	readStmts  *preparedSet
	writeStmts *preparedSet
	// writes gathers concurrent Updates into shared transactions.
	writes *group.Committer[sqltx.Request]
	// writeFailure holds the error of the last write batch when the
	// storage failed it (a full disk, an I/O error, a lock another
	// process kept), until a batch commits (noteBatch): Ready reports it.
	writeFailure atomic.Pointer[error]
	// lastProbe is when Ready's last write began (Unix nanoseconds).
	lastProbe atomic.Int64
	// files are the database file and its WAL as Open found them (Ready).
	files openfiles.Set
	// checkpoints copies the WAL into the database file beside the writer.
	checkpoints *checkpointer
}

// Open opens (creating if needed, with its folder) the database at path and
// applies pending migrations.
func Open(ctx context.Context, path string, catalog *schema.Catalog) (*DB, error) {
	db, err := open(ctx, path, catalog)
	return db, onFullDisk(path, err)
}

func open(ctx context.Context, path string, catalog *schema.Catalog) (*DB, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("sqlite: creating database folder: %w", err)
		}
	}
	// Create the file readable by its owner only; SQLite gives the WAL and
	// shared-memory files the same mode.
	if f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err == nil {
		f.Close()
	} else if !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("sqlite: creating database file: %w", err)
	}
	migrations, err := store.LoadMigrations(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	admin, err := sql.Open("sqlite", dsn(path, "immediate"))
	if err != nil {
		return nil, err
	}
	// A serving process uses its admin connection only to migrate: it
	// is closed once idle, and opened again when needed.
	admin.SetMaxOpenConns(1)
	admin.SetMaxIdleConns(0)
	db := &DB{admin: admin, migrations: migrations, build: sqlbuild.New(catalog, dialect.SQLite)}
	if err := db.migrate(ctx); err != nil {
		admin.Close()
		return nil, err
	}
	writer, err := sql.Open("sqlite", WriterDSN(path))
	if err != nil {
		admin.Close()
		return nil, err
	}
	writer.SetMaxOpenConns(1)
	writer.SetConnMaxIdleTime(0)
	db.writer = writer
	db.writes = group.New(group.Config[sqltx.Request]{MaxBatch: maxWriteBatch, MaxInFlight: 1,
		Weight: sqltx.Rows, MaxWeight: sqltx.MaxBatchRows, Leave: sqltx.Leave}, db.commitBatch)
	reader, err := sql.Open("sqlite", dsn(path, "deferred", "query_only(1)"))
	if err != nil {
		admin.Close()
		writer.Close()
		return nil, err
	}
	readers := max(minReaders, runtime.GOMAXPROCS(0))
	reader.SetMaxOpenConns(readers)
	reader.SetMaxIdleConns(readers)
	db.reader = reader
	if db.checkpoints, err = startCheckpointer(path); err != nil {
		db.Close()
		return nil, err
	}
	// With the fixed statements, the client lookup of authentication; the
	// writer links audit entries, so it has their inserts too.
	queries := append(db.build.Fixed(), upsertAuditHead, db.build.Client("").SQL)
	if db.writeStmts, err = newPreparedSet(ctx, writer, append(db.build.AuditInserts(), queries...)); err != nil {
		db.Close()
		return nil, err
	}
	if db.readStmts, err = newPreparedSet(ctx, reader, queries); err != nil {
		db.Close()
		return nil, err
	}
	// The connections keep both files open from here on (SQLite removes
	// the WAL when the last connection to the file closes).
	if db.files, err = openfiles.Note(path, path+"-wal"); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return db, nil
}

// WriterDSN is the data source name (pragmas included: WAL,
// synchronous=FULL) of the connection the store commits Updates through,
// so that the benchmark harness can time commits under the same settings
// without the store.
func WriterDSN(path string) string { return dsn(path, "immediate", writerPragmas...) }

// writerPragmas are the writer's own settings.
//
// temp_store(MEMORY): a batch of Updates runs each in a savepoint, and
// SQLite keeps the pages a savepoint changes in a sub-journal, which spills
// to a temporary file past 64 KiB and then stays a file until the
// transaction ends: every page the batch's later requests changed was
// written to it with a system call, 8% of a create's CPU. Kept in
// memory, the sub-journal is emptied as each request's savepoint is
// released, so it holds one request's pages at most (a bulk write's,
// sqltx.MaxBatchRows rows); a crash loses nothing, as it only undoes a
// failed request.
//
// wal_autocheckpoint(10000): the commit that takes the WAL past this many
// pages copies them into the database file, on the writer, while the next
// batch waits. Every commit rewrites the same hot pages (B-tree roots, the
// audit heads, FTS5's segment index), so at SQLite's default of 1,000 pages
// (4 MiB) the checkpoints copied them again and again; at 10,000 (40 MiB
// of WAL, which the file keeps) each is copied once per 40 MiB written, and
// create, patch and get gained 15-35%, 25-30% and 8-13% (docs/benchmarks.md).
// The checkpointer (checkpoint.go) now copies most of them beside the
// writer; the writer's checkpoint copies the rest and lets the WAL restart.
//
// The admin connection keeps the defaults: a migration or a customer's
// deletion changes every row of a table in one statement, whose journal
// must not be held in memory.
var writerPragmas = []string{"temp_store(MEMORY)", "wal_autocheckpoint(10000)"}

// dsn is the data source name of a connection to path whose transactions
// begin with txlock, with the common pragmas and then the given ones.
func dsn(path, txlock string, pragmas ...string) string {
	q := url.Values{}
	q.Add("_txlock", txlock)
	for _, p := range []string{
		"busy_timeout(10000)",
		"foreign_keys(1)",
		"journal_mode(WAL)",
		// A WAL that a long read let grow (no checkpoint can restart the
		// WAL while a read uses it) is cut back to 64 MiB once it
		// restarts, where it would keep its largest size for good; the
		// 40 MiB that the writer's checkpoints keep is never cut.
		"journal_size_limit(67108864)",
		"synchronous(FULL)",
		"secure_delete(1)",
	} {
		q.Add("_pragma", p)
	}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// Close stops the checkpointer and closes the connection pools.
func (db *DB) Close() error {
	var checkpointErr error
	if db.checkpoints != nil {
		checkpointErr = db.checkpoints.close()
	}
	for _, p := range []*preparedSet{db.readStmts, db.writeStmts} {
		if p != nil {
			p.close()
		}
	}
	return errors.Join(checkpointErr, db.reader.Close(), db.writer.Close(), db.admin.Close())
}

func (db *DB) migrate(ctx context.Context) error {
	err := WhileSettingUp(func() error {
		_, err := db.admin.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT`)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: creating migration table: %w", err)
	}
	done, err := db.appliedMigrations(ctx)
	if err != nil {
		return err
	}
	for _, m := range db.migrations {
		if done[m.Version] {
			continue
		}
		applied := false
		err := db.inTx(ctx, db.admin, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.Version, m.Name, time.Now().UTC().Format(store.TimeLayout))
			applied = err == nil
			return err
		})
		if err != nil {
			return fmt.Errorf("sqlite: applying migration %s: %w", m.Name, err)
		}
		if applied {
			db.migrated = append(db.migrated, m.Name)
		}
	}
	return nil
}

// appliedMigrations reads the versions already applied, outside a
// transaction. The admin connection begins its transactions IMMEDIATE,
// taking the write lock, and a busy file's writers can keep that from a
// waiting connection past its busy timeout (SQLite's busy handler is not
// fair); a command opening a migrated database that two servers are
// writing must not need the lock at all. A migration found pending is
// checked again inside its transaction, where another process may have
// applied it meanwhile.
func (db *DB) appliedMigrations(ctx context.Context) (map[int]bool, error) {
	rows, err := db.admin.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: reading applied migrations: %w", err)
	}
	defer rows.Close()
	done := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("sqlite: reading applied migrations: %w", err)
		}
		done[v] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: reading applied migrations: %w", err)
	}
	return done, nil
}

// Migrated returns the migrations Open applied.
func (db *DB) Migrated() []string { return db.migrated }

// CountCustomers counts the customers in the database file at path, and
// those of them whose ids are among, without creating, migrating or
// changing anything: 0 when there is no database there yet, or no customer
// table in it. A command asks before it decides whether a new master key
// may be made, and whether a key store is the database's.
func CountCustomers(ctx context.Context, path string, among []string) (total, found int, err error) {
	defer func() { err = onFullDisk(path, err) }()
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return 0, 0, nil
	}
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	var tables int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'customers'`).Scan(&tables); err != nil {
		return 0, 0, fmt.Errorf("sqlite: reading the database: %w", err)
	}
	if tables == 0 {
		return 0, 0, nil
	}
	ids, err := dialect.SQLite.List(among)
	if err != nil {
		return 0, 0, err
	}
	err = db.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE id IN (SELECT value FROM json_each(?))) FROM customers`, ids).
		Scan(&total, &found)
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: counting customers: %w", err)
	}
	return total, found, nil
}

// Ready checks that the database answers, every migration is applied, no
// write batch has been committing for longer than store.WriteStall, the
// storage takes writes (see writeFailure), and the database's files are
// still the ones the process opened.
func (db *DB) Ready(ctx context.Context) error {
	// The database file or its WAL removed or replaced under the process
	// (openfiles): a clean stop first copies the WAL into the database
	// file it has open, and a start opens the one at the path.
	if err := db.files.Check(); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	var n int
	if err := db.reader.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		return err
	}
	if n != len(db.migrations) {
		return fmt.Errorf("sqlite: schema has %d of %d migrations", n, len(db.migrations))
	}
	if db.writes.Stalled(store.WriteStall) {
		return store.ErrWritesStalled
	}
	if failed := db.writeFailure.Load(); failed != nil {
		// Writes failed on the storage, and no batch has committed
		// since. Perhaps none was tried (a balancer sends nothing to a
		// process that is not ready): a write of its own says whether
		// the storage takes writes again.
		if !db.probeWrite(ctx) {
			return fmt.Errorf("sqlite: writes are failing: %w", *failed)
		}
		db.writeFailure.CompareAndSwap(failed, nil)
	}
	return nil
}

// probeEvery is the least time between two of Ready's writes: /readyz
// needs no credentials, and a write is a flush of the disk.
const probeEvery = time.Second

// probeWrite commits a change of the database header's user version
// (which nothing else uses), on the writer, between batches: a write that
// needs the storage as any other does (a WAL frame, flushed), and that no
// reader sees. It reports false without trying within probeEvery of the
// last probe's start (of concurrent callers, one takes the turn).
func (db *DB) probeWrite(ctx context.Context) bool {
	now := time.Now().UnixNano()
	last := db.lastProbe.Load()
	if now-last < int64(probeEvery) || !db.lastProbe.CompareAndSwap(last, now) {
		return false
	}
	_, err := db.writer.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", now&math.MaxInt32))
	return err == nil
}

func (db *DB) inTx(ctx context.Context, pool *sql.DB, fn func(*sql.Tx) error) error {
	tx, err := pool.BeginTx(ctx, nil)
	if err != nil {
		// A new connection the storage would not open, say.
		return classify(err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return classify(tx.Commit())
}

// View runs fn in a read transaction: one consistent snapshot.
func (db *DB) View(ctx context.Context, fn func(store.Tx) error) error {
	return db.inTx(ctx, db.reader, func(tx *sql.Tx) error { return fn(db.newTxn(tx, db.readStmts, false)) })
}

// Get reads one row with the statement prepared on the reader pool, in
// SQLite's implicit transaction of that one statement.
func (db *DB) Get(ctx context.Context, customerID string, res *schema.Resource, id string) (store.Row, error) {
	t, err := db.build.Table(res)
	if err != nil {
		return store.Row{}, err
	}
	s := t.Get(customerID, id)
	return t.Scan(row{db.readStmts.onPool(s.SQL).QueryRowContext(ctx, s.Args...)})
}

// Version reads a list version with the statement prepared on the reader
// pool, in SQLite's implicit transaction of that one statement.
func (db *DB) Version(ctx context.Context, customerID string, res *schema.Resource) (int64, error) {
	t, err := db.build.Table(res)
	if err != nil {
		return 0, err
	}
	s := db.build.Version(customerID, t.Name())
	return sqltx.ScanVersion(row{db.readStmts.onPool(s.SQL).QueryRowContext(ctx, s.Args...)})
}

// AppendAuditAlone appends entries in an Update: the writer is in this
// process, so a transaction costs no round trips.
func (db *DB) AppendAuditAlone(ctx context.Context, entries []audit.Entry) error {
	return db.Update(ctx, func(tx store.Tx) error { return tx.AppendAudit(ctx, entries) })
}

// maxWriteBatch is the most Updates one transaction holds. The writes that
// gather while a transaction commits join the next one; the cap bounds how
// long its last writer waits for the others' work.
const maxWriteBatch = 64

// Update runs fn in a write transaction and returns once it has committed
// (synchronous=FULL: durably). Concurrent Updates share one transaction of
// the one writer, and one flush (group commit): each runs in a savepoint
// of it, so one failing undoes its own writes only, and each returns only
// once the shared transaction has committed. So fn must do its own
// validation, sealing and other work that needs no transaction before,
// not inside: every writer of the batch waits for it. When ctx ends
// before fn's turn has come, Update returns its error at once and fn never
// runs; once fn has begun, Update waits for its batch's outcome.
func (db *DB) Update(ctx context.Context, fn func(store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.writes.Do(ctx, sqltx.NewRequest(ctx, fn))
}

// commitBatch runs a batch of Updates in one transaction.
func (db *DB) commitBatch(batch []sqltx.Request, errs []error) (err error) {
	committed := false
	defer func() { db.noteBatch(committed, err, errs) }()
	ctx := context.Background()
	tx, err := db.writer.BeginTx(ctx, nil)
	if err != nil {
		// Another process (a command, another server) may have held the
		// write lock past the busy timeout: nothing of the batch was
		// written, and its requests may be sent again.
		return classify(err)
	}
	defer tx.Rollback() // a no-op once committed
	t := db.newTxn(tx, db.writeStmts, true)
	commit, err := t.RunBatch(ctx, t, batch, errs, t.linkAudit)
	if err != nil || !commit {
		return err
	}
	if err := tx.Commit(); err != nil {
		return commitFailure(err)
	}
	committed = true
	db.checkpoints.committed()
	return nil
}

// noteBatch records whether the storage failed a batch (its error, or a
// request's), for Ready, and forgets it once a batch commits.
func (db *DB) noteBatch(committed bool, err error, errs []error) {
	failed := err
	for _, e := range errs {
		if !store.UnavailableBeneath(failed) {
			failed = e
		}
	}
	switch {
	case store.UnavailableBeneath(failed):
		db.writeFailure.Store(&failed)
	case committed:
		db.writeFailure.Store(nil)
	}
}

// commitFailure classifies the error of a COMMIT. A full disk
// (SQLITE_FULL) or a failed write (SQLITE_IOERR_WRITE) left the commit
// frame of the WAL unwritten or torn, and nothing committed: unavailability,
// as for any statement before it. Any other failure (a flush that failed,
// SQLITE_IOERR_FSYNC) may have left the transaction in the WAL, to be
// found there when the database is next opened: its outcome is unknown,
// and it says so above the unavailability (store.OutcomeUnknown).
func commitFailure(err error) error {
	var se *sqlite3.Error
	if errors.As(err, &se) && (se.Code()&0xff == sqlite3lib.SQLITE_FULL || se.Code() == sqlite3lib.SQLITE_IOERR_WRITE) {
		return store.MarkUnavailable(err)
	}
	err = classify(err)
	if store.Unavailable(err) {
		return store.OutcomeUnknown(err)
	}
	return err
}

// fullBelow is the free space under which a file system counts as full
// for onFullDisk: less than SQLite needs to grow its shared-memory file
// (32 KiB at a time) and write a transaction's pages to the WAL.
const fullBelow = 1 << 20

// ErrFileSystemFull is the cause onFullDisk adds to an I/O failure.
var ErrFileSystemFull = errors.New("the file system holding the database is full")

// onFullDisk says, of an I/O failure of the database at path, that the
// file system holding the database is full (ErrFileSystemFull), when it
// is. SQLite names a full disk met while growing its shared-memory file as
// a plain I/O error ("disk I/O error (4874)", SQLITE_IOERR_SHMSIZE), and a
// command refusing to start on it should say what to mend.
func onFullDisk(path string, err error) error {
	var se *sqlite3.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() & 0xff {
	case sqlite3lib.SQLITE_IOERR, sqlite3lib.SQLITE_FULL, sqlite3lib.SQLITE_CANTOPEN:
		if fullFileSystem(path) {
			return fmt.Errorf("%w: %w", err, ErrFileSystemFull)
		}
	}
	return err
}

// Busy reports whether err is SQLite's SQLITE_BUSY (of any extended code):
// the lock it needed stayed taken past the busy timeout.
func Busy(err error) bool {
	var se *sqlite3.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3lib.SQLITE_BUSY
}

// WhileSettingUp runs op, the first statement of a process on a database
// file that others may be opening at the same moment, again while it fails
// SQLITE_BUSY, for a second in all: processes opening a new file at once
// each switch it to WAL, and SQLite answers SQLITE_BUSY at once, without
// calling its busy handler, to one that meets another setting up the WAL's
// index, or whose read of the file another's write made stale before it
// asked for the write lock. (Servers started together on a new database
// failed so, one in a few dozen starts.)
func WhileSettingUp(op func() error) error {
	for attempt := 1; ; attempt++ {
		err := op()
		if attempt == setUpAttempts || !Busy(err) {
			return err
		}
		time.Sleep(setUpRetryPause)
	}
}

// setUpAttempts and setUpRetryPause bound WhileSettingUp's retries.
const (
	setUpAttempts   = 20
	setUpRetryPause = 50 * time.Millisecond
)

// NotADatabase reports whether err is SQLite's SQLITE_NOTADB: the file
// opened is not an SQLite database (another file named by mistake, or a
// damaged one), which no retry mends.
func NotADatabase(err error) bool {
	var se *sqlite3.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3lib.SQLITE_NOTADB
}

// classify turns a constraint failure into the store's error: a unique
// violation into a *store.UniqueViolation naming the column, a foreign key
// violation into a *store.ReferenceViolation without a column (SQLite does
// not say which key; sqltx finds the missing reference). SQLite names the
// unique columns in the message ("UNIQUE constraint failed:
// t.customer_id, t.tenant_id"); the last one is the constrained field. The
// message carries names only, never values.
func classify(err error) error {
	var se *sqlite3.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() & 0xff {
	case sqlite3lib.SQLITE_FULL, sqlite3lib.SQLITE_IOERR, sqlite3lib.SQLITE_CANTOPEN, sqlite3lib.SQLITE_READONLY, sqlite3lib.SQLITE_BUSY:
		// The storage failed the statement: a full disk, an I/O error,
		// a file that can't be opened or written any more, a write lock
		// another process kept past the busy timeout. SQLite undid the
		// statement (or its whole transaction), and the request may be
		// sent again once the storage is mended (the API's 503). A
		// COMMIT's failure is commitFailure's.
		return store.MarkUnavailable(err)
	}
	switch se.Code() {
	case sqlite3lib.SQLITE_CONSTRAINT_FOREIGNKEY:
		return &store.ReferenceViolation{}
	case sqlite3lib.SQLITE_CONSTRAINT_UNIQUE, sqlite3lib.SQLITE_CONSTRAINT_PRIMARYKEY:
		msg := se.Error()
		if i := strings.LastIndex(msg, "."); i >= 0 {
			col := msg[i+1:]
			if j := strings.IndexAny(col, " ()"); j >= 0 {
				col = col[:j]
			}
			return &store.UniqueViolation{Column: col}
		}
	}
	return err
}

// Dialect is the SQL dialect the store writes its statements in.
func (db *DB) Dialect() dialect.Dialect { return dialect.SQLite }

// TableColumns reads a table's columns from the database, for checking the
// tables the migrations made against the declarations (storetest).
func (db *DB) TableColumns(ctx context.Context, table string) ([]sqlbuild.TableColumn, error) {
	return collect(ctx, db, db.build.Columns(table), sqlbuild.ScanTableColumn)
}

// Explain returns the plan SQLite makes for stmt, one line per step of
// EXPLAIN QUERY PLAN (storetest's plan checks).
func (db *DB) Explain(ctx context.Context, stmt sqlbuild.Stmt) ([]string, error) {
	rows, err := db.reader.QueryContext(ctx, "EXPLAIN QUERY PLAN "+stmt.SQL, stmt.Args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			return nil, err
		}
		out = append(out, detail)
	}
	return out, rows.Err()
}
