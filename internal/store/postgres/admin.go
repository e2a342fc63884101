package postgres

import (
	"context"
	"errors"
	"time"

	"accounts/internal/store"
	"accounts/internal/store/pgsafe"
	"accounts/internal/store/sqlbuild"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// CreateCustomer stores a customer.
func (db *DB) CreateCustomer(ctx context.Context, c store.Customer) error {
	stmt := db.build.CreateCustomer(c)
	_, err := db.pool.Exec(ctx, stmt.SQL, stmt.Args...)
	return db.classify(err)
}

// DeleteCustomer deletes a customer and every row it owns, audit trail aside.
//
// Its transaction takes the rows of every table of the customer that
// processes still serving it may be writing: when PostgreSQL aborts it as
// a deadlock victim, it runs again (whileRetryable).
func (db *DB) DeleteCustomer(ctx context.Context, customerID string) error {
	return whileRetryable(ctx, func() error {
		return db.inTx(ctx, readWrite, func(tx pgx.Tx) error {
			var tag pgconn.CommandTag
			for _, stmt := range db.build.DeleteCustomer(customerID) {
				var err error
				if tag, err = tx.Exec(ctx, stmt.SQL, stmt.Args...); err != nil {
					return db.classify(err)
				}
			}
			return oneRow(tag)
		})
	})
}

// Customer returns one customer.
func (db *DB) Customer(ctx context.Context, id string) (store.Customer, error) {
	stmt := db.build.Customer(id)
	var c store.Customer
	err := db.whileConnectionLost(func() (err error) {
		c, err = sqlbuild.ScanCustomer(db.pool.QueryRow(ctx, stmt.SQL, stmt.Args...))
		return pgsafe.Err(err)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Customer{}, store.ErrNotFound
	}
	return c, err
}

// Customers lists every customer, oldest first.
func (db *DB) Customers(ctx context.Context) ([]store.Customer, error) {
	return collect(ctx, db, db.build.Customers(), sqlbuild.ScanCustomer)
}

// CreateClient stores a new API client.
func (db *DB) CreateClient(ctx context.Context, c store.Client) error {
	stmt := db.build.CreateClient(c)
	_, err := db.pool.Exec(ctx, stmt.SQL, stmt.Args...)
	return db.classify(err)
}

// Client returns the client with the given entity id.
func (db *DB) Client(ctx context.Context, id string) (store.Client, error) {
	stmt := db.build.Client(id)
	var c store.Client
	err := db.whileConnectionLost(func() (err error) {
		c, err = sqlbuild.ScanClient(db.pool.QueryRow(ctx, stmt.SQL, stmt.Args...))
		return pgsafe.Err(err)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return c, store.ErrNotFound
	}
	return c, err
}

// Clients lists a customer's clients, oldest first.
func (db *DB) Clients(ctx context.Context, customerID string) ([]store.Client, error) {
	return collect(ctx, db, db.build.Clients(customerID), sqlbuild.ScanClient)
}

// RevokeClient marks a client revoked, keeping the first revocation time.
func (db *DB) RevokeClient(ctx context.Context, id string, at time.Time) error {
	stmt := db.build.RevokeClient(id, at)
	tag, err := db.pool.Exec(ctx, stmt.SQL, stmt.Args...)
	if err != nil {
		return pgsafe.Err(err)
	}
	return oneRow(tag)
}

// collect reads every row stmt selects with scan.
func collect[T any](ctx context.Context, db *DB, stmt sqlbuild.Stmt, scan func(sqlbuild.Scanner) (T, error)) ([]T, error) {
	rows, err := db.pool.Query(ctx, stmt.SQL, stmt.Args...)
	if err != nil {
		return nil, pgsafe.Err(err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, pgsafe.Err(err)
		}
		out = append(out, v)
	}
	return out, pgsafe.Err(rows.Err())
}
