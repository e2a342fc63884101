package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"accounts/internal/store"
)

// CreateCustomer stores a customer.
func (db *DB) CreateCustomer(ctx context.Context, c store.Customer) error {
	_, err := db.writer.ExecContext(ctx, `INSERT INTO customers (id, name, created_at) VALUES (?, ?, ?)`,
		c.ID, c.Name, c.CreatedAt.UTC().Format(store.TimeLayout))
	return err
}

// customerTables are the tables holding a customer's rows, referencing
// tables before the tables they reference.
var customerTables = []string{"protected_identities", "tenants", "subtenants", "addresses", "organizations", "list_versions", "clients"}

// DeleteCustomer deletes a customer and every row it owns, audit trail aside.
func (db *DB) DeleteCustomer(ctx context.Context, customerID string) error {
	return db.inTx(ctx, db.writer, func(tx *sql.Tx) error {
		for _, table := range customerTables {
			if _, err := tx.ExecContext(ctx, "DELETE FROM "+table+" WHERE customer_id = ?", customerID); err != nil {
				return err
			}
		}
		r, err := tx.ExecContext(ctx, `DELETE FROM customers WHERE id = ?`, customerID)
		if err != nil {
			return err
		}
		return oneRow(r)
	})
}

// Customer returns one customer.
func (db *DB) Customer(ctx context.Context, id string) (store.Customer, error) {
	c := store.Customer{}
	var created string
	err := db.reader.QueryRowContext(ctx, `SELECT id, name, created_at FROM customers WHERE id = ?`, id).Scan(&c.ID, &c.Name, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return c, store.ErrNotFound
	}
	if err != nil {
		return c, err
	}
	c.CreatedAt, err = time.Parse(store.TimeLayout, created)
	return c, err
}

// Customers lists every customer, oldest first.
func (db *DB) Customers(ctx context.Context) ([]store.Customer, error) {
	rows, err := db.reader.QueryContext(ctx, `SELECT id, name, created_at FROM customers ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Customer
	for rows.Next() {
		var c store.Customer
		var created string
		if err := rows.Scan(&c.ID, &c.Name, &created); err != nil {
			return nil, err
		}
		if c.CreatedAt, err = time.Parse(store.TimeLayout, created); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// CreateClient stores a new API client.
func (db *DB) CreateClient(ctx context.Context, c store.Client) error {
	_, err := db.writer.ExecContext(ctx, `INSERT INTO clients (id, customer_id, application_id, service_id,
		service_version_id, client_ct, secret_digest, scope, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.CustomerID, c.ApplicationID, c.ServiceID, c.ServiceVersionID, c.ClientCT, c.SecretDigest, c.Scope,
		c.CreatedAt.UTC().Format(store.TimeLayout))
	return err
}

const clientColumns = `id, customer_id, application_id, service_id, service_version_id, client_ct,
	secret_digest, scope, created_at, revoked_at`

func scanClient(row interface{ Scan(...any) error }) (store.Client, error) {
	var c store.Client
	var created string
	var revoked sql.NullString
	if err := row.Scan(&c.ID, &c.CustomerID, &c.ApplicationID, &c.ServiceID, &c.ServiceVersionID, &c.ClientCT,
		&c.SecretDigest, &c.Scope, &created, &revoked); err != nil {
		return c, err
	}
	var err error
	if c.CreatedAt, err = time.Parse(store.TimeLayout, created); err != nil {
		return c, err
	}
	if revoked.Valid {
		at, err := time.Parse(store.TimeLayout, revoked.String)
		if err != nil {
			return c, err
		}
		c.RevokedAt = &at
	}
	return c, nil
}

// Client returns the client with the given entity id.
func (db *DB) Client(ctx context.Context, id string) (store.Client, error) {
	c, err := scanClient(db.reader.QueryRowContext(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return c, store.ErrNotFound
	}
	return c, err
}

// Clients lists a customer's clients, oldest first.
func (db *DB) Clients(ctx context.Context, customerID string) ([]store.Client, error) {
	rows, err := db.reader.QueryContext(ctx, `SELECT `+clientColumns+` FROM clients WHERE customer_id = ? ORDER BY created_at, id`, customerID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Client
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// RevokeClient marks a client revoked, keeping the first revocation time.
func (db *DB) RevokeClient(ctx context.Context, id string, at time.Time) error {
	r, err := db.writer.ExecContext(ctx, `UPDATE clients SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?`,
		at.UTC().Format(store.TimeLayout), id)
	if err != nil {
		return err
	}
	return oneRow(r)
}
