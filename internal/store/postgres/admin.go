package postgres

import (
	"context"
	"errors"
	"time"

	"accounts/internal/store"

	"github.com/jackc/pgx/v5"
)

// CreateCustomer stores a customer.
func (db *DB) CreateCustomer(ctx context.Context, c store.Customer) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO customers (id, name, created_at) VALUES ($1, $2, $3)`,
		c.ID, c.Name, dbTime(c.CreatedAt))
	return db.classify(err)
}

// customerTables are the tables holding a customer's rows, referencing
// tables before the tables they reference.
var customerTables = []string{"protected_identities", "tenants", "subtenants", "addresses", "organizations", "list_versions", "clients"}

// DeleteCustomer deletes a customer and every row it owns, audit trail aside.
func (db *DB) DeleteCustomer(ctx context.Context, customerID string) error {
	return db.inTx(ctx, readWrite, func(tx pgx.Tx) error {
		for _, table := range customerTables {
			if _, err := tx.Exec(ctx, "DELETE FROM "+table+" WHERE customer_id = $1", customerID); err != nil {
				return db.classify(err)
			}
		}
		tag, err := tx.Exec(ctx, `DELETE FROM customers WHERE id = $1`, customerID)
		if err != nil {
			return db.classify(err)
		}
		if tag.RowsAffected() != 1 {
			return store.ErrNotFound
		}
		return nil
	})
}

// Customer returns one customer.
func (db *DB) Customer(ctx context.Context, id string) (store.Customer, error) {
	c := store.Customer{}
	err := db.pool.QueryRow(ctx, `SELECT id, name, created_at FROM customers WHERE id = $1`, id).Scan(&c.ID, &c.Name, &c.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Customer{}, store.ErrNotFound
	}
	c.CreatedAt = c.CreatedAt.UTC()
	return c, sanitize(err)
}

// Customers lists every customer, oldest first.
func (db *DB) Customers(ctx context.Context) ([]store.Customer, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, name, created_at FROM customers ORDER BY created_at, id`)
	if err != nil {
		return nil, sanitize(err)
	}
	defer rows.Close()
	var out []store.Customer
	for rows.Next() {
		var c store.Customer
		if err := rows.Scan(&c.ID, &c.Name, &c.CreatedAt); err != nil {
			return nil, sanitize(err)
		}
		c.CreatedAt = c.CreatedAt.UTC()
		out = append(out, c)
	}
	return out, sanitize(rows.Err())
}

// CreateClient stores a new API client.
func (db *DB) CreateClient(ctx context.Context, c store.Client) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO clients (id, customer_id, application_id, service_id,
		service_version_id, client_ct, secret_digest, scope, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		c.ID, c.CustomerID, c.ApplicationID, c.ServiceID, c.ServiceVersionID, c.ClientCT, c.SecretDigest, c.Scope,
		dbTime(c.CreatedAt))
	return db.classify(err)
}

const clientColumns = `id, customer_id, application_id, service_id, service_version_id, client_ct,
	secret_digest, scope, created_at, revoked_at`

func scanClient(row pgx.Row) (store.Client, error) {
	var c store.Client
	var revoked *time.Time
	if err := row.Scan(&c.ID, &c.CustomerID, &c.ApplicationID, &c.ServiceID, &c.ServiceVersionID, &c.ClientCT,
		&c.SecretDigest, &c.Scope, &c.CreatedAt, &revoked); err != nil {
		return store.Client{}, err
	}
	c.CreatedAt = c.CreatedAt.UTC()
	if revoked != nil {
		at := revoked.UTC()
		c.RevokedAt = &at
	}
	return c, nil
}

// Client returns the client with the given entity id.
func (db *DB) Client(ctx context.Context, id string) (store.Client, error) {
	c, err := scanClient(db.pool.QueryRow(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return c, store.ErrNotFound
	}
	return c, sanitize(err)
}

// Clients lists a customer's clients, oldest first.
func (db *DB) Clients(ctx context.Context, customerID string) ([]store.Client, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+clientColumns+` FROM clients WHERE customer_id = $1 ORDER BY created_at, id`, customerID)
	if err != nil {
		return nil, sanitize(err)
	}
	defer rows.Close()
	var out []store.Client
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, sanitize(err)
		}
		out = append(out, c)
	}
	return out, sanitize(rows.Err())
}

// RevokeClient marks a client revoked, keeping the first revocation time.
func (db *DB) RevokeClient(ctx context.Context, id string, at time.Time) error {
	tag, err := db.pool.Exec(ctx, `UPDATE clients SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2`, dbTime(at), id)
	if err != nil {
		return sanitize(err)
	}
	return oneRow(tag)
}
