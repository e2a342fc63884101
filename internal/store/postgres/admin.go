package postgres

import (
	"context"
	"errors"
	"time"

	"accounts/internal/seal"
	"accounts/internal/store"

	"github.com/jackc/pgx/v5"
)

// CreateCustomer stores a customer and its wrapped keys in one transaction.
func (db *DB) CreateCustomer(ctx context.Context, c store.Customer, keys []seal.WrappedKey) error {
	return db.inTx(ctx, readWrite, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO customers (id, name, created_at) VALUES ($1, $2, $3)`,
			c.ID, c.Name, dbTime(c.CreatedAt)); err != nil {
			return db.classify(err)
		}
		for _, k := range keys {
			if _, err := tx.Exec(ctx, `INSERT INTO customer_keys (customer_id, purpose, version, wrapped) VALUES ($1, $2, $3, $4)`,
				k.CustomerID, k.Purpose, k.Version, k.Wrapped); err != nil {
				return db.classify(err)
			}
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

// CustomerKeys returns a customer's wrapped keys.
func (db *DB) CustomerKeys(ctx context.Context, customerID string) ([]seal.WrappedKey, error) {
	rows, err := db.pool.Query(ctx, `SELECT purpose, version, wrapped FROM customer_keys WHERE customer_id = $1 ORDER BY purpose, version`, customerID)
	if err != nil {
		return nil, sanitize(err)
	}
	defer rows.Close()
	var keys []seal.WrappedKey
	for rows.Next() {
		k := seal.WrappedKey{CustomerID: customerID}
		if err := rows.Scan(&k.Purpose, &k.Version, &k.Wrapped); err != nil {
			return nil, sanitize(err)
		}
		keys = append(keys, k)
	}
	return keys, sanitize(rows.Err())
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
