package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"accounts/internal/seal"
	"accounts/internal/store"
)

// CreateCustomer stores a customer and its wrapped keys in one transaction.
func (db *DB) CreateCustomer(ctx context.Context, c store.Customer, keys []seal.WrappedKey) error {
	return db.inTx(ctx, db.writer, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO customers (id, name, created_at) VALUES (?, ?, ?)`,
			c.ID, c.Name, c.CreatedAt.UTC().Format(store.TimeLayout)); err != nil {
			return err
		}
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, `INSERT INTO customer_keys (customer_id, purpose, version, wrapped) VALUES (?, ?, ?, ?)`,
				k.CustomerID, k.Purpose, k.Version, k.Wrapped); err != nil {
				return err
			}
		}
		return nil
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

// CustomerKeys returns a customer's wrapped keys.
func (db *DB) CustomerKeys(ctx context.Context, customerID string) ([]seal.WrappedKey, error) {
	rows, err := db.reader.QueryContext(ctx, `SELECT purpose, version, wrapped FROM customer_keys WHERE customer_id = ? ORDER BY purpose, version`, customerID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys []seal.WrappedKey
	for rows.Next() {
		k := seal.WrappedKey{CustomerID: customerID}
		if err := rows.Scan(&k.Purpose, &k.Version, &k.Wrapped); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
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
