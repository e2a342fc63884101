// Package keystore keeps the customers' wrapped keys apart from their data:
// in a database of its own (a SQLite file, or a PostgreSQL database other
// than the data's), so that a backup of the data alone carries no key, and
// destroying a customer's keys makes every copy of that customer's data,
// backups included, unreadable (crypto-shredding).
package keystore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"accounts/internal/seal"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // the "sqlite" database/sql driver
)

// Store is a key store.
type Store struct {
	db *sql.DB
	pg bool
}

// IsPostgres reports whether location names a PostgreSQL database.
func IsPostgres(location string) bool {
	return strings.HasPrefix(location, "postgres://") || strings.HasPrefix(location, "postgresql://")
}

// Open opens (creating if needed) the key store at location: a file path
// (SQLite) or a postgres:// URL.
func Open(ctx context.Context, location string) (*Store, error) {
	s := &Store{pg: IsPostgres(location)}
	var err error
	if s.pg {
		s.db, err = sql.Open("pgx", location)
	} else {
		if err := os.MkdirAll(filepath.Dir(location), 0o700); err != nil {
			return nil, fmt.Errorf("keystore: creating folder: %w", err)
		}
		if f, err := os.OpenFile(location, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err == nil {
			f.Close()
		} else if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("keystore: creating file: %w", err)
		}
		q := url.Values{}
		for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "secure_delete(1)"} {
			q.Add("_pragma", p)
		}
		q.Add("_txlock", "immediate")
		s.db, err = sql.Open("sqlite", "file:"+(&url.URL{Path: location}).EscapedPath()+"?"+q.Encode())
	}
	if err != nil {
		return nil, err
	}
	blob := "BLOB"
	if s.pg {
		blob = "bytea"
	}
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS customer_keys (
		customer_id TEXT    NOT NULL,
		purpose     TEXT    NOT NULL CHECK (purpose IN ('data', 'index')),
		version     INTEGER NOT NULL,
		wrapped     `+blob+` NOT NULL,
		PRIMARY KEY (customer_id, purpose, version))`); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("keystore: creating table: %w", err)
	}
	return s, nil
}

// Close closes the key store.
func (s *Store) Close() error { return s.db.Close() }

// bind rewrites ? placeholders as $n for PostgreSQL.
func (s *Store) bind(q string) string {
	if !s.pg {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Put stores new wrapped keys, all or none.
func (s *Store) Put(ctx context.Context, keys []seal.WrappedKey) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, s.bind(`INSERT INTO customer_keys (customer_id, purpose, version, wrapped) VALUES (?, ?, ?, ?)`),
				k.CustomerID, k.Purpose, k.Version, k.Wrapped); err != nil {
				return err
			}
		}
		return nil
	})
}

// Replace overwrites existing wrapped keys (a master key rotation), all or
// none, and purges the old ones from the files.
func (s *Store) Replace(ctx context.Context, keys []seal.WrappedKey) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, k := range keys {
			r, err := tx.ExecContext(ctx, s.bind(`UPDATE customer_keys SET wrapped = ? WHERE customer_id = ? AND purpose = ? AND version = ?`),
				k.Wrapped, k.CustomerID, k.Purpose, k.Version)
			if err != nil {
				return err
			}
			if n, err := r.RowsAffected(); err != nil || n != 1 {
				return fmt.Errorf("keystore: replacing a key that is not there (%v)", err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.purge(ctx)
}

// CustomerKeys returns a customer's wrapped keys (seal.KeySource).
func (s *Store) CustomerKeys(ctx context.Context, customerID string) ([]seal.WrappedKey, error) {
	return s.query(ctx, `SELECT customer_id, purpose, version, wrapped FROM customer_keys WHERE customer_id = ? ORDER BY purpose, version`, customerID)
}

// All returns every wrapped key.
func (s *Store) All(ctx context.Context) ([]seal.WrappedKey, error) {
	return s.query(ctx, `SELECT customer_id, purpose, version, wrapped FROM customer_keys ORDER BY customer_id, purpose, version`)
}

func (s *Store) query(ctx context.Context, q string, args ...any) ([]seal.WrappedKey, error) {
	rows, err := s.db.QueryContext(ctx, s.bind(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []seal.WrappedKey
	for rows.Next() {
		var k seal.WrappedKey
		if err := rows.Scan(&k.CustomerID, &k.Purpose, &k.Version, &k.Wrapped); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// Destroy deletes every key of a customer. Without them, no copy of the
// customer's sealed data can be opened again.
func (s *Store) Destroy(ctx context.Context, customerID string) error {
	if _, err := s.db.ExecContext(ctx, s.bind(`DELETE FROM customer_keys WHERE customer_id = ?`), customerID); err != nil {
		return err
	}
	return s.purge(ctx)
}

// purge removes the bytes of deleted or replaced keys from the files, as far
// as the engine allows: SQLite (with secure_delete) zeroes them when the WAL
// is checkpointed into the main file and truncated; PostgreSQL's VACUUM frees
// the dead rows (its write-ahead log keeps them until it is recycled).
func (s *Store) purge(ctx context.Context) error {
	q := `PRAGMA wal_checkpoint(TRUNCATE)`
	if s.pg {
		q = `VACUUM customer_keys`
	}
	_, err := s.db.ExecContext(ctx, q)
	return err
}

func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
