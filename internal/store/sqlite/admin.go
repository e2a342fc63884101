package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"accounts/internal/store"
	"accounts/internal/store/sqlbuild"
)

// CreateCustomer stores a customer.
func (db *DB) CreateCustomer(ctx context.Context, c store.Customer) error {
	stmt := db.build.CreateCustomer(c)
	_, err := db.admin.ExecContext(ctx, stmt.SQL, stmt.Args...)
	return classify(err)
}

// DeleteCustomer deletes a customer and every row it owns, audit trail aside.
func (db *DB) DeleteCustomer(ctx context.Context, customerID string) error {
	return whileBusy(func() error { return db.deleteCustomer(ctx, customerID) })
}

func (db *DB) deleteCustomer(ctx context.Context, customerID string) error {
	return db.inTx(ctx, db.admin, func(tx *sql.Tx) error {
		var r sql.Result
		for _, stmt := range db.build.DeleteCustomer(customerID) {
			var err error
			if r, err = tx.ExecContext(ctx, stmt.SQL, stmt.Args...); err != nil {
				return classify(err)
			}
		}
		return oneRow(r)
	})
}

// Customer returns one customer.
func (db *DB) Customer(ctx context.Context, id string) (store.Customer, error) {
	stmt := db.build.Customer(id)
	c, err := sqlbuild.ScanCustomer(db.reader.QueryRowContext(ctx, stmt.SQL, stmt.Args...))
	if errors.Is(err, sql.ErrNoRows) {
		return c, store.ErrNotFound
	}
	return c, classify(err)
}

// Customers lists every customer, oldest first.
func (db *DB) Customers(ctx context.Context) ([]store.Customer, error) {
	return collect(ctx, db, db.build.Customers(), sqlbuild.ScanCustomer)
}

// CreateClient stores a new API client.
func (db *DB) CreateClient(ctx context.Context, c store.Client) error {
	stmt := db.build.CreateClient(c)
	_, err := db.admin.ExecContext(ctx, stmt.SQL, stmt.Args...)
	err = classify(err)
	var rv *store.ReferenceViolation
	if errors.As(err, &rv) {
		rv.Column = "customer_id" // a client's one reference
	}
	return err
}

// Client returns the client with the given entity id.
func (db *DB) Client(ctx context.Context, id string) (store.Client, error) {
	stmt := db.build.Client(id)
	c, err := sqlbuild.ScanClient(db.readStmts.onPool(stmt.SQL).QueryRowContext(ctx, stmt.Args...))
	if errors.Is(err, sql.ErrNoRows) {
		return c, store.ErrNotFound
	}
	return c, classify(err)
}

// Clients lists a customer's clients, oldest first.
func (db *DB) Clients(ctx context.Context, customerID string) ([]store.Client, error) {
	return collect(ctx, db, db.build.Clients(customerID), sqlbuild.ScanClient)
}

// RevokeClient marks a client revoked, keeping the first revocation time.
func (db *DB) RevokeClient(ctx context.Context, id string, at time.Time) error {
	stmt := db.build.RevokeClient(id, at)
	var r sql.Result
	err := whileBusy(func() (err error) {
		r, err = db.admin.ExecContext(ctx, stmt.SQL, stmt.Args...)
		return err
	})
	if err != nil {
		return err
	}
	return oneRow(r)
}

// adminBusyRuns is how many times an administrative write is tried while
// the database stays locked: serving processes that keep the write lock
// taken, batch after batch, can make one wait of the busy timeout (10 s)
// miss every moment it was free. A command run by hand may wait longer
// than a request.
const adminBusyRuns = 4

// whileBusy runs an administrative write again while it fails because
// another process held the write lock past the busy timeout.
func whileBusy(op func() error) error {
	for run := 1; ; run++ {
		err := op()
		if run == adminBusyRuns || !Busy(err) {
			return err
		}
	}
}

// collect reads every row stmt selects with scan.
func collect[T any](ctx context.Context, db *DB, stmt sqlbuild.Stmt, scan func(sqlbuild.Scanner) (T, error)) ([]T, error) {
	rows, err := db.reader.QueryContext(ctx, stmt.SQL, stmt.Args...)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, classify(err)
		}
		out = append(out, v)
	}
	return out, classify(rows.Err())
}

func oneRow(r sql.Result) error {
	n, err := r.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}
