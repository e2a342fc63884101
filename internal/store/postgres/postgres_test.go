package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"accounts/internal/audit"
	"accounts/internal/schema"
	"accounts/internal/store"
	"accounts/internal/store/pgsafe"
	"accounts/internal/store/sqlbuild"
	"accounts/internal/store/sqltx"
	"accounts/internal/store/storetest"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func open(t *testing.T, dbURL string, catalog *schema.Catalog) *DB {
	t.Helper()
	db, err := Open(context.Background(), dbURL, catalog)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, catalog *schema.Catalog) store.Store {
		return open(t, storetest.PostgresURL(t), catalog)
	})
}

// Two processes opening a fresh database at once: the advisory lock lets
// one migrate while the other waits, and both end up ready.
func TestConcurrentOpen(t *testing.T) {
	dbURL := storetest.PostgresURL(t)
	const n = 4
	dbs := make([]*DB, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dbs[i], errs[i] = Open(context.Background(), dbURL, schema.New())
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Open %d: %v", i, errs[i])
			continue
		}
		defer dbs[i].Close()
		if err := dbs[i].Ready(context.Background()); err != nil {
			t.Errorf("Ready %d: %v", i, err)
		}
	}
	var applied int
	if err := dbs[0].pool.QueryRow(context.Background(), "SELECT count(*) FROM schema_migrations").Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if applied != len(dbs[0].migrations) {
		t.Errorf("schema_migrations has %d rows, want %d", applied, len(dbs[0].migrations))
	}
	// The lock is released: another open does not wait for it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, err := Open(ctx, dbURL, schema.New())
	if err != nil {
		t.Fatalf("Open after the others: %v", err)
	}
	db.Close()
}

func TestReadyFailsWhenClosed(t *testing.T) {
	db, err := Open(context.Background(), storetest.PostgresURL(t), schema.New())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := db.Ready(context.Background()); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	db.Close()
	if err := db.Ready(context.Background()); err == nil {
		t.Error("Ready succeeded on a closed store")
	}
}

func TestReadyFailsWithoutMigrations(t *testing.T) {
	db := open(t, storetest.PostgresURL(t), schema.New())
	if _, err := db.pool.Exec(context.Background(), "DELETE FROM schema_migrations"); err != nil {
		t.Fatal(err)
	}
	if err := db.Ready(context.Background()); err == nil {
		t.Error("Ready succeeded with migrations missing")
	}
}

// synchronous_commit=off acknowledges commits before they are durable. It
// can be set per session, so a runtime parameter in the URL is enough to
// check the refusal. (fsync can only be turned off server-wide: not
// tested here.)
func TestRefusesAsynchronousCommit(t *testing.T) {
	u, err := url.Parse(storetest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("synchronous_commit", "off")
	u.RawQuery = q.Encode()
	db, err := Open(context.Background(), u.String(), schema.New())
	if err == nil {
		db.Close()
		t.Fatal("Open accepted a session with synchronous_commit=off")
	}
	if !strings.Contains(err.Error(), "synchronous_commit") || !strings.Contains(err.Error(), "lost") {
		t.Errorf("the refusal does not say why: %v", err)
	}
}

func TestAcceptsLocalSynchronousCommit(t *testing.T) {
	u, err := url.Parse(storetest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("synchronous_commit", "local")
	u.RawQuery = q.Encode()
	open(t, u.String(), schema.New())
}

func TestConnectTimeout(t *testing.T) {
	cfg, err := poolConfig("postgres://user@127.0.0.1:5432/db")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ConnConfig.ConnectTimeout != DefaultConnectTimeout {
		t.Errorf("connect timeout without connect_timeout = %v, want %v", cfg.ConnConfig.ConnectTimeout, DefaultConnectTimeout)
	}
	cfg, err = poolConfig("postgres://user@127.0.0.1:5432/db?connect_timeout=7")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ConnConfig.ConnectTimeout != 7*time.Second {
		t.Errorf("connect timeout with connect_timeout=7 = %v", cfg.ConnConfig.ConnectTimeout)
	}
	_, err = poolConfig("postgres://user:s3cret-pw@127.0.0.1:5432/db?connect_timeout=x")
	if err == nil || strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("a bad URL: err = %v, want an error without the password", err)
	}
}

// A server that accepts connections but never answers (down, or cut off)
// makes Open fail after the connect timeout instead of hanging.
func TestUnansweringServerFailsFast(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	start := time.Now()
	db, err := Open(context.Background(), "postgres://user@"+ln.Addr().String()+"/db?sslmode=disable", schema.New())
	if err == nil {
		db.Close()
		t.Fatal("Open succeeded against a server that never answers")
	}
	if d := time.Since(start); d > DefaultConnectTimeout+5*time.Second {
		t.Errorf("Open gave up after %v, want about %v", d, DefaultConnectTimeout)
	}
}

// Every unique field of the catalog maps to its column, read from the
// constraints of the migrated schema.
func TestUniqueConstraintsKnown(t *testing.T) {
	catalog := schema.New()
	db := open(t, storetest.PostgresURL(t), catalog)
	columns := map[string]bool{}
	for key, col := range db.uniqueColumns {
		columns[strings.SplitN(key, ".", 2)[0]+"."+col] = true
	}
	for _, res := range catalog.Resources {
		if !columns[res.Table+".id"] {
			t.Errorf("%s: no primary key constraint reported on id", res.Table)
		}
		for _, f := range res.Fields {
			if f.Unique && !columns[res.Table+"."+f.Column()] {
				t.Errorf("%s.%s: no unique constraint reported on %s", res.Name, f.Name, f.Column())
			}
		}
	}
}

// A server error keeps its code and constraint and drops the message and
// detail, which quote values.
func TestErrorsQuoteNoValues(t *testing.T) {
	catalog := schema.New()
	db := open(t, storetest.PostgresURL(t), catalog)
	ctx := context.Background()
	_, err := db.pool.Exec(ctx, `INSERT INTO customers (id, name, created_at) VALUES ('c1', 'secret-name', now()),
		('c1', 'secret-name', now())`)
	if err == nil {
		t.Fatal("duplicate insert succeeded")
	}
	var uv *store.UniqueViolation
	if err := db.classify(err); !errors.As(err, &uv) || uv.Column != "id" {
		t.Errorf("classify: %v, want a unique violation on id", err)
	}
	_, err = db.pool.Exec(ctx, `INSERT INTO clients (id, customer_id, application_id, service_id, service_version_id,
		client_ct, secret_digest, scope, created_at) VALUES ('x', 'secret-customer', 'a', 's', 'v', 'ct', '\x00', 'read', now())`)
	if err == nil {
		t.Fatal("dangling reference accepted")
	}
	s := pgsafe.Err(err)
	var pe *pgsafe.Error
	if !errors.As(s, &pe) || pe.Code != "23503" || pe.Constraint != "clients_customer_fkey" {
		t.Errorf("sanitize: %v, want code 23503 on clients_customer_fkey", s)
	}
	if strings.Contains(s.Error(), "secret-customer") {
		t.Error("the error message quotes a value")
	}
}

// deadlockProbe makes a table of two rows, 1 and 2, on a fresh store, and
// returns the store, a bump of one row's count inside a transaction, and a
// check that each row was bumped want times.
// openWithCustomer opens a fresh database holding one customer.
func openWithCustomer(t *testing.T) (*DB, *schema.Catalog, string) {
	t.Helper()
	catalog := schema.New()
	db := open(t, storetest.PostgresURL(t), catalog)
	customer := uuid.NewString()
	created := time.Now().UTC().Truncate(time.Microsecond)
	if err := db.CreateCustomer(context.Background(), store.Customer{ID: customer, Name: "Fastighets AB", CreatedAt: created}); err != nil {
		t.Fatal(err)
	}
	return db, catalog, customer
}

func deadlockProbe(t *testing.T) (db *DB, bump func(store.Tx, int) error, bumped func(want int)) {
	t.Helper()
	db = open(t, storetest.PostgresURL(t), schema.New())
	ctx := context.Background()
	if _, err := db.pool.Exec(ctx, `CREATE TABLE deadlock_probe (id int PRIMARY KEY, n int NOT NULL);
		INSERT INTO deadlock_probe VALUES (1, 0), (2, 0)`); err != nil {
		t.Fatal(err)
	}
	bump = func(tx store.Tx, id int) error {
		_, err := tx.(*txn).conn.Exec(ctx, sqlbuild.Stmt{SQL: `UPDATE deadlock_probe SET n = n + 1 WHERE id = $1`, Args: []any{id}})
		return err
	}
	bumped = func(want int) {
		t.Helper()
		for _, id := range []int{1, 2} {
			var n int
			if err := db.pool.QueryRow(ctx, `SELECT n FROM deadlock_probe WHERE id = $1`, id).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != want {
				t.Errorf("row %d bumped %d times, want %d (once by each transaction)", id, n, want)
			}
		}
	}
	return db, bump, bumped
}

// Two shared transactions that take the same two rows in opposite orders
// deadlock, and PostgreSQL fails the statement of one of their requests:
// that request runs again in a transaction of its own, and every request
// of both batches succeeds.
func TestDeadlockedRequestRunsAgain(t *testing.T) {
	db, bump, bumped := deadlockProbe(t)
	ctx := context.Background()
	// Each batch locks its first row, then waits until the other has
	// locked its own before it asks for the other's.
	batch := func(first, second int, locked chan<- struct{}, other <-chan struct{}) []sqltx.Request {
		var once sync.Once
		return []sqltx.Request{
			sqltx.NewRequest(ctx, func(tx store.Tx) error {
				err := bump(tx, first)
				once.Do(func() { close(locked) })
				return err
			}),
			sqltx.NewRequest(ctx, func(tx store.Tx) error {
				<-other
				return bump(tx, second)
			}),
		}
	}
	aLocked, bLocked := make(chan struct{}), make(chan struct{})
	batches := [][]sqltx.Request{batch(1, 2, aLocked, bLocked), batch(2, 1, bLocked, aLocked)}
	errs := [][]error{make([]error, 2), make([]error, 2)}
	batchErrs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batchErrs[i] = db.commitBatch(batches[i], errs[i])
		}()
	}
	wg.Wait()
	for i := range batches {
		if batchErrs[i] != nil {
			t.Errorf("batch %d: %v", i, batchErrs[i])
		}
		for j, err := range errs[i] {
			if err != nil {
				t.Errorf("batch %d, request %d: %v", i, j, err)
			}
		}
	}
	bumped(2)
}

// Two transactions of one request each, taking the same two rows in
// opposite orders (two bulk writes of the same objects, say), deadlock:
// the request PostgreSQL aborts runs again, and both succeed.
func TestDeadlockedSoloRequestRunsAgain(t *testing.T) {
	db, bump, bumped := deadlockProbe(t)
	ctx := context.Background()
	// Each request locks its first row, then waits until the other has
	// locked its own before it asks for the other's.
	request := func(first, second int, locked chan<- struct{}, other <-chan struct{}) sqltx.Request {
		var once sync.Once
		return sqltx.NewRequest(ctx, func(tx store.Tx) error {
			if err := bump(tx, first); err != nil {
				return err
			}
			once.Do(func() { close(locked) })
			<-other
			return bump(tx, second)
		})
	}
	aLocked, bLocked := make(chan struct{}), make(chan struct{})
	requests := []sqltx.Request{request(1, 2, aLocked, bLocked), request(2, 1, bLocked, aLocked)}
	errs := make([]error, len(requests))
	batchErrs := make([]error, len(requests))
	var wg sync.WaitGroup
	for i := range requests {
		wg.Go(func() { batchErrs[i] = db.commitBatch(requests[i:i+1], errs[i:i+1]) })
	}
	wg.Wait()
	for i := range requests {
		if batchErrs[i] != nil || errs[i] != nil {
			t.Errorf("request %d: batch error %v, request error %v", i, batchErrs[i], errs[i])
		}
	}
	bumped(2)
}

// The savepoint statements wait to go with the statement after them
// (conn.deferred): what they do is unchanged, a savepoint with nothing
// inside is never sent, and a deferred statement that fails fails the
// statement it went with instead of vanishing.
func TestDeferredSavepointStatements(t *testing.T) {
	db := open(t, storetest.PostgresURL(t), schema.New())
	ctx := context.Background()
	if _, err := db.pool.Exec(ctx, `CREATE TEMPORARY TABLE savepoint_probe (n int PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	inTx := func(fn func(c *conn)) {
		t.Helper()
		tx, err := db.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		fn(db.newTxn(tx, nil).conn)
	}
	stmt := func(sql string, args ...any) sqlbuild.Stmt { return sqlbuild.Stmt{SQL: sql, Args: args} }
	count := func(c *conn) int {
		var n int
		if err := c.QueryRow(ctx, stmt(`SELECT count(*) FROM savepoint_probe`)).Scan(&n); err != nil {
			t.Fatalf("count: %v", err)
		}
		return n
	}

	inTx(func(c *conn) {
		// A request's writes roll back to its savepoint, the one before
		// stays, and a failed statement leaves the transaction usable.
		for _, sql := range []string{sqlbuild.Savepoint, `INSERT INTO savepoint_probe VALUES (1)`, sqlbuild.ReleaseSavepoint, sqlbuild.Savepoint} {
			run := func() error { _, err := c.Exec(ctx, stmt(sql)); return err }
			if sql == sqlbuild.Savepoint || sql == sqlbuild.ReleaseSavepoint {
				run = func() error { return c.ExecLater(ctx, stmt(sql)) }
			}
			if err := run(); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
		}
		if _, err := c.Exec(ctx, stmt(`INSERT INTO savepoint_probe VALUES (1)`)); err == nil {
			t.Fatal("a duplicate insert succeeded")
		}
		if _, err := c.Exec(ctx, stmt(sqlbuild.RollbackTo)); err != nil {
			t.Fatalf("rolling back to the savepoint: %v", err)
		}
		if n := count(c); n != 1 {
			t.Errorf("%d rows after rolling back the second request, want 1", n)
		}
		// A savepoint with no statement inside is not sent at all.
		c.ExecLater(ctx, stmt(sqlbuild.ReleaseSavepoint))
		c.ExecLater(ctx, stmt(sqlbuild.Savepoint))
		c.ExecLater(ctx, stmt(sqlbuild.ReleaseSavepoint))
		if want := []sqlbuild.Stmt{{SQL: sqlbuild.ReleaseSavepoint}}; !slices.EqualFunc(c.deferred, want, func(a, b sqlbuild.Stmt) bool { return a.SQL == b.SQL }) {
			t.Errorf("deferred %v, want %v", c.deferred, want)
		}
	})

	inTx(func(c *conn) {
		// Releasing a savepoint never taken fails the next statement.
		if err := c.ExecLater(ctx, stmt(sqlbuild.ReleaseSavepoint)); err != nil {
			t.Fatalf("a deferred release: %v", err)
		}
		var pe *pgsafe.Error
		if _, err := c.Exec(ctx, stmt(`INSERT INTO savepoint_probe VALUES (2)`)); !errors.As(err, &pe) || pe.Code != "3B001" {
			t.Errorf("the statement after a release of no savepoint: %v, want SQLSTATE 3B001", err)
		}
	})
}

// Two processes append to the same two chains at once, each through
// AppendAuditAlone and through transactions: every process's remembered
// heads go stale under the other's appends. Every chain still holds every
// entry exactly once, at positions 1, 2, ..., each linked to the one before,
// its head the last; and each writer's entries keep the order it wrote them.
func TestAppendAuditAloneAcrossProcesses(t *testing.T) {
	dbURL := storetest.PostgresURL(t)
	catalog := schema.New()
	dbs := []*DB{open(t, dbURL, catalog), open(t, dbURL, catalog)}
	ctx := context.Background()
	customers := []string{uuid.NewString(), uuid.NewString()}
	const rounds = 25
	var wg sync.WaitGroup
	for p, db := range dbs {
		for _, alone := range []bool{true, false} {
			writer := fmt.Sprintf("process %d, alone %v", p, alone)
			wg.Go(func() {
				for i := range rounds {
					var entries []audit.Entry
					for _, c := range []string{customers[0], customers[1], customers[i%2]} {
						entries = append(entries, audit.Entry{CustomerID: c, Time: time.Now(), ClientID: writer,
							RequestID: fmt.Sprint(i), Action: audit.Read, Resource: "tenant"})
					}
					var err error
					if alone {
						err = db.AppendAuditAlone(ctx, entries)
					} else {
						err = db.Update(ctx, func(tx store.Tx) error { return tx.AppendAudit(ctx, entries) })
					}
					if err != nil {
						t.Errorf("%s, round %d: %v", writer, i, err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	for n, c := range customers {
		var v audit.Verifier
		var count int
		last := map[string]int{} // each writer's last round seen
		err := dbs[0].AuditEntries(ctx, c, func(e audit.Entry) error {
			count++
			if err := v.Next(e); err != nil {
				return err
			}
			round, _ := strconv.Atoi(e.RequestID)
			if prev, seen := last[e.ClientID]; seen && round < prev {
				t.Errorf("customer %d: %s's round %d after its round %d", n, e.ClientID, round, prev)
			}
			last[e.ClientID] = round
			return nil
		})
		if err != nil {
			t.Fatalf("customer %d: %v", n, err)
		}
		head, err := dbs[1].AuditHead(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.End(c, head); err != nil {
			t.Errorf("customer %d: %v", n, err)
		}
		// Each of the 4 writers appends, each round, one entry for each
		// customer and one more for one of them in turn.
		if want := 4 * (rounds + rounds/2 + (rounds%2)*(1-n)); count != want {
			t.Errorf("customer %d: %d entries, want %d", n, count, want)
		}
	}
}

// A batch of writes sends its last statements (the list versions' stamps,
// the audit entries and heads) with its COMMIT. When one of them fails
// there, the batch fails whole and leaves nothing behind: no row, no list
// version, no audit entry; and the next batch is served.
func TestFailureAtCommitLeavesNothing(t *testing.T) {
	db, catalog, customer := openWithCustomer(t)
	ctx := context.Background()
	tenants := catalog.Resource(schema.Tenant)
	entry := audit.Entry{CustomerID: customer, Time: time.Now(), ClientID: "client", RequestID: "r",
		Action: audit.Create, Resource: tenants.Name}
	write := func() (store.Row, error) {
		row := storetest.NewRow(tenants, time.Now().UTC().Truncate(time.Microsecond), nil)
		return row, db.Update(ctx, func(tx store.Tx) error {
			if err := tx.Insert(ctx, customer, tenants, row); err != nil {
				return err
			}
			return tx.AppendAudit(ctx, []audit.Entry{entry})
		})
	}
	// An entry already at position 1 of a chain whose head is at 0: the
	// batch's own entry collides with it at COMMIT.
	if _, err := db.pool.Exec(ctx, `INSERT INTO audit_entries (customer_id, position, at, client_id, request_id, action,
		resource, object_ids, fields, prev_hash, hash) VALUES ($1, 1, now(), 'c', 'r', 'read', 'tenant', '{}', '{}', '\x00', '\x00')`, customer); err != nil {
		t.Fatal(err)
	}
	row, err := write()
	var uv *store.UniqueViolation
	if !errors.As(err, &uv) {
		t.Fatalf("a batch whose audit entry collides at COMMIT: %v, want a unique violation", err)
	}
	if _, err := db.Get(ctx, customer, tenants, row.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the failed batch's row: %v, want not found", err)
	}
	if v, err := db.Version(ctx, customer, tenants); err != nil || v != 0 {
		t.Errorf("list version after the failed batch = %d (err %v), want 0", v, err)
	}
	if head, err := db.AuditHead(ctx, customer); err != nil || head.Position != 0 {
		t.Errorf("audit head after the failed batch = %+v (err %v), want none", head, err)
	}
	if _, err := db.pool.Exec(ctx, `DELETE FROM audit_entries WHERE customer_id = $1`, customer); err != nil {
		t.Fatal(err)
	}
	if row, err = write(); err != nil {
		t.Fatalf("the next batch: %v", err)
	}
	if _, err := db.Get(ctx, customer, tenants, row.ID); err != nil {
		t.Errorf("the next batch's row: %v", err)
	}
	if v, err := db.Version(ctx, customer, tenants); err != nil || v != 1 {
		t.Errorf("list version after the next batch = %d (err %v), want 1", v, err)
	}
	storetest.CheckAuditChain(t, db, customer, []audit.Entry{entry})
}

// A batch that runs out of its time before its COMMIT (a lock held
// elsewhere, a database gone silent) committed nothing: its requests'
// errors are unavailability (the API's 503, never a 500), and the next
// batch, once the lock is given back, is made.
func TestBatchOutOfTimeIsUnavailable(t *testing.T) {
	catalog := schema.New()
	url := storetest.PostgresURL(t)
	db := open(t, url, catalog)
	ctx := context.Background()
	tenants := catalog.Resource(schema.Tenant)
	customer := uuid.NewString()
	if err := db.CreateCustomer(ctx, store.Customer{ID: customer, Name: "Fastighets AB", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	defer func(was time.Duration) { batchTimeout = was }(batchTimeout)
	batchTimeout = 500 * time.Millisecond
	write := func() error {
		row := storetest.NewRow(tenants, time.Now().UTC().Truncate(time.Microsecond), nil)
		return db.Update(ctx, func(tx store.Tx) error { return tx.Insert(ctx, customer, tenants, row) })
	}
	locker, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close(ctx)
	lock, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(ctx, `LOCK TABLE tenants IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	err = write()
	lock.Rollback(ctx)
	if err == nil || !store.Unavailable(err) {
		t.Errorf("a write whose batch ran out of time behind a lock: %v, want unavailability", err)
	}
	if err := write(); err != nil {
		t.Errorf("the write after the lock was given back: %v", err)
	}
}

// A connection lost at a write's COMMIT leaves its outcome unknown: the
// error is not unavailability (which tells a client to send the request
// again), though the same loss before the COMMIT is.
func TestLostAtCommitIsNotUnavailable(t *testing.T) {
	lost := pgsafe.Err(&pgconn.PgError{Code: "57P01"})
	if !store.Unavailable(lost) {
		t.Fatal("an ended backend is not unavailability: this test would prove nothing")
	}
	if store.Unavailable(store.OutcomeUnknown(lost)) || store.Unavailable(fmt.Errorf("postgres: batch: %w", store.OutcomeUnknown(lost))) {
		t.Error("a connection lost at COMMIT is unavailability")
	}
}

// A statement pgx did not send, on a connection it found closed (as under
// load after the server ended backends), is a connection lost before the
// COMMIT: it runs again on the next connection (whileConnectionLost).
func TestConnectionFoundClosedRunsAgain(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, storetest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	_, err = conn.Exec(ctx, "SELECT 1")
	if err == nil {
		t.Fatal("a statement on a closed connection succeeded")
	}
	if !lostBeforeCommit(pgsafe.Err(err)) {
		t.Errorf("a statement pgx did not send: not a connection lost before the COMMIT (%T)", err)
	}
	if lostBeforeCommit(store.OutcomeUnknown(pgsafe.Err(err))) {
		t.Error("a COMMIT on a lost connection counts as lost before the COMMIT")
	}
}

// A transaction PostgreSQL keeps choosing as a deadlock victim runs
// retryAttempts times and then fails as unavailability (a 503 with
// Retry-After): none of its runs committed anything. Another failure is
// not run again and stays the service's own.
func TestDeadlockVictimRunsOutAsUnavailable(t *testing.T) {
	for _, c := range []struct {
		code        string
		runs        int
		unavailable bool
	}{
		{"40P01", retryAttempts, true}, // deadlock_detected
		{"40001", retryAttempts, true}, // serialization_failure
		{"23505", 1, false},            // unique_violation
	} {
		runs := 0
		err := whileRetryable(context.Background(), func() error {
			runs++
			return &pgsafe.Error{Code: c.code}
		})
		if runs != c.runs {
			t.Errorf("%s: %d runs, want %d", c.code, runs, c.runs)
		}
		if store.Unavailable(err) != c.unavailable {
			t.Errorf("%s: unavailable %v, want %v", c.code, store.Unavailable(err), c.unavailable)
		}
	}
}

// LockRows takes its rows' locks in the order of their ids, whatever the
// order it is given them in, so that two bulk writes of the same objects
// wait for each other instead of deadlocking: while another transaction
// holds the row of the smaller id, the other row is not locked yet.
func TestLockRowsInIDOrder(t *testing.T) {
	db, catalog, customer := openWithCustomer(t)
	ctx := context.Background()
	res := catalog.Resource(schema.Organization)
	created := time.Now().UTC().Truncate(time.Microsecond)
	first, second := "10000000-0000-4000-8000-000000000000", "20000000-0000-4000-8000-000000000000"
	err := db.Update(ctx, func(tx store.Tx) error {
		for _, id := range []string{first, second} {
			row := storetest.NewRow(res, created, nil)
			row.ID = id
			if err := tx.Insert(ctx, customer, res, row); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	lockOutside := func(id string, nowait string) (pgx.Tx, error) {
		tx, err := db.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = tx.Exec(ctx, "SELECT 1 FROM organizations WHERE customer_id = $1 AND id = $2 FOR UPDATE "+nowait, customer, id)
		return tx, err
	}
	holder, err := lockOutside(first, "")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- db.Update(ctx, func(tx store.Tx) error { return tx.LockRows(ctx, customer, res, []string{second, first}) })
	}()
	// Wait until LockRows waits for the held row.
	for deadline := time.Now().Add(10 * time.Second); ; {
		var waiting bool
		err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()
			AND wait_event_type = 'Lock' AND query LIKE 'SELECT id FROM organizations WHERE customer_id = % FOR NO KEY UPDATE')`).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("LockRows never waited for the held row")
		}
		time.Sleep(10 * time.Millisecond)
	}
	probe, err := lockOutside(second, "NOWAIT")
	if err != nil {
		t.Errorf("the row of the larger id was locked before the row of the smaller one: %v", err)
	}
	probe.Rollback(ctx)
	holder.Rollback(ctx)
	if err := <-done; err != nil {
		t.Fatalf("LockRows: %v", err)
	}
}
