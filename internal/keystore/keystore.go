// Package keystore keeps the customers' wrapped keys apart from their data:
// in a database of its own (a SQLite file, or a PostgreSQL database other
// than the data's), so that a backup of the data alone carries no key, and
// destroying a customer's keys makes every copy of that customer's data,
// backups included, unreadable (crypto-shredding).
package keystore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"accounts/internal/openfiles"
	"accounts/internal/seal"
	"accounts/internal/store/dialect"
	"accounts/internal/store/pgsafe"
	"accounts/internal/store/postgres"
	"accounts/internal/store/sqlite"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // the "sqlite" database/sql driver
)

// Store is a key store.
type Store struct {
	db *sql.DB
	pg bool
	// dialect writes the statements' placeholders for the engine.
	dialect dialect.Dialect
	// noCheckTable is set by Lookup on a key store written before check
	// values existed: it has no check value.
	noCheckTable bool
	// file is a SQLite key store's file as Open found it: Check fails
	// once it is no longer at its path.
	file openfiles.Set
}

// ErrCheckChanged is returned by Put and Rotate when the key store's check
// value is not the one the caller verified its master key against: a
// master key rotation (or a first start) ran meanwhile. Nothing was
// written; verify the master key again and retry.
var ErrCheckChanged = errors.New("keystore: the master key check value changed meanwhile (a master key rotation ran); nothing was written: run the command again")

// IsPostgres reports whether location names a PostgreSQL database.
func IsPostgres(location string) bool {
	return strings.HasPrefix(location, "postgres://") || strings.HasPrefix(location, "postgresql://")
}

// newStore is a key store at location, not yet opened.
func newStore(location string) *Store {
	if IsPostgres(location) {
		return &Store{pg: true, dialect: dialect.Postgres}
	}
	return &Store{dialect: dialect.SQLite}
}

// sqliteDSN is the driver's name for the key store file at path.
func sqliteDSN(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	if readOnly {
		// SQLite's own URI parameter: the file is opened read-only, and
		// never created.
		q.Add("mode", "ro")
	} else {
		for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "secure_delete(1)"} {
			q.Add("_pragma", p)
		}
		q.Add("_txlock", "immediate")
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// Open opens (creating if needed) the key store at location: a file path
// (SQLite) or a postgres:// URL.
func Open(ctx context.Context, location string) (_ *Store, err error) {
	defer safe(&err)
	s := newStore(location)
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
		s.db, err = sql.Open("sqlite", sqliteDSN(location, false))
	}
	if err != nil {
		return nil, err
	}
	if err := s.checkDurable(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	blob := "BLOB"
	if s.pg {
		blob = "bytea"
	}
	if err := s.createTablesWhileBusy(ctx, []string{`CREATE TABLE IF NOT EXISTS customer_keys (
		customer_id TEXT    NOT NULL,
		purpose     TEXT    NOT NULL CHECK (purpose IN ('data', 'index')),
		version     INTEGER NOT NULL,
		wrapped     ` + blob + ` NOT NULL,
		PRIMARY KEY (customer_id, purpose, version))`,
		// One row: the check value of the master key every customer key
		// is wrapped under (seal.MasterKey.NewCheck).
		`CREATE TABLE IF NOT EXISTS master_key_check (
		id          INTEGER PRIMARY KEY CHECK (id = 1),
		check_value ` + blob + ` NOT NULL)`,
	}); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("keystore: creating tables: %w", err)
	}
	if !s.pg {
		// The file only: the pool may close its last connection, and
		// SQLite then removes the WAL.
		if s.file, err = openfiles.Note(location); err != nil {
			s.db.Close()
			return nil, fmt.Errorf("keystore: %w", err)
		}
	}
	return s, nil
}

// createLock is the pg_advisory_xact_lock key that serializes the creation
// of a PostgreSQL key store's tables (the data store's migrations take
// another).
const createLock = 0x6b657973746f7265 // "keystore"

// createTables runs the CREATE TABLE IF NOT EXISTS statements in one
// transaction. On PostgreSQL it holds createLock first: two of them at once
// both find no table and the second fails on a catalog constraint, so that
// one of several processes starting together on a new key store would exit.
// createTablesWhileBusy is createTables, run again while a new SQLite file
// is busy (sqlite.WhileSettingUp).
func (s *Store) createTablesWhileBusy(ctx context.Context, tables []string) error {
	if s.pg {
		return s.createTables(ctx, tables)
	}
	return sqlite.WhileSettingUp(func() error { return s.createTables(ctx, tables) })
}

func (s *Store) createTables(ctx context.Context, tables []string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if s.pg {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(createLock)); err != nil {
				return err
			}
		}
		for _, table := range tables {
			if _, err := tx.ExecContext(ctx, table); err != nil {
				return err
			}
		}
		return nil
	})
}

// Lookup opens the key store at location for reading only, creating
// nothing: ok is false, and s nil, when there is no key store there yet (no
// file, or no tables in it). It is how a command learns what the key store
// holds before it changes anything.
func Lookup(ctx context.Context, location string) (s *Store, ok bool, err error) {
	defer safe(&err)
	s = newStore(location)
	if s.pg {
		s.db, err = sql.Open("pgx", location)
	} else {
		if _, err := os.Stat(location); errors.Is(err, os.ErrNotExist) {
			return nil, false, nil
		}
		s.db, err = sql.Open("sqlite", sqliteDSN(location, true))
	}
	if err != nil {
		return nil, false, err
	}
	if err := s.checkDurable(ctx); err != nil {
		s.db.Close()
		return nil, false, err
	}
	q := `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`
	if s.pg {
		q = `SELECT count(*) FROM (SELECT to_regclass($1) AS t) r WHERE t IS NOT NULL`
	}
	exists := func(table string) (bool, error) {
		var n int
		err := s.db.QueryRowContext(ctx, q, table).Scan(&n)
		return n > 0, err
	}
	keys, err := exists("customer_keys")
	if err == nil && keys {
		var check bool
		check, err = exists("master_key_check")
		s.noCheckTable = !check
	}
	if err != nil || !keys {
		s.db.Close()
		if err != nil {
			return nil, false, fmt.Errorf("keystore: reading: %w", err)
		}
		return nil, false, nil
	}
	return s, true, nil
}

// checkDurable refuses a PostgreSQL key store that acknowledges commits
// it may lose (postgres.CheckDurability): a customer key lost in a crash
// leaves every value sealed under it unreadable. A file's own settings
// are the store's (synchronous=FULL).
func (s *Store) checkDurable(ctx context.Context) error {
	if !s.pg {
		return nil
	}
	return postgres.CheckDurability(func(setting string) (v string, err error) {
		err = s.db.QueryRowContext(ctx, "SHOW "+setting).Scan(&v)
		return v, err
	})
}

// safe makes a PostgreSQL error of an exported method safe to log and
// print (pgsafe): every error the key store returns goes through it.
func safe(err *error) { *err = pgsafe.Err(*err) }

// Close closes the key store.
func (s *Store) Close() error { return s.db.Close() }

// Check returns the stored master key check value, nil when there is none
// (a new key store, or one written before check values existed; also a key
// store opened by Lookup that predates the check table). It fails when the
// file of a key store that Open opened was removed or replaced since: the
// keys of customers created since are in the file the process has open,
// which no other process (nor this one, once restarted) reads.
func (s *Store) Check(ctx context.Context) (_ []byte, err error) {
	defer safe(&err)
	if err := s.file.Check(); err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	return s.check(ctx, s.db, "")
}

// queryRower is a *sql.DB or a *sql.Tx.
type queryRower interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// check reads the check value; lock is appended to the statement (a row
// lock on PostgreSQL).
func (s *Store) check(ctx context.Context, q queryRower, lock string) ([]byte, error) {
	if s.noCheckTable {
		return nil, nil
	}
	var v []byte
	err := q.QueryRowContext(ctx, `SELECT check_value FROM master_key_check WHERE id = 1`+lock).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return v, err
}

// InitCheck stores check as the key store's check value unless it has one
// already, and returns the one it holds then: check, or another process's
// that came first.
func (s *Store) InitCheck(ctx context.Context, check []byte) (_ []byte, err error) {
	defer safe(&err)
	if _, err := s.db.ExecContext(ctx, s.dialect.Bind(`INSERT INTO master_key_check (id, check_value) VALUES (1, ?) ON CONFLICT (id) DO NOTHING`), check); err != nil {
		return nil, err
	}
	return s.Check(ctx)
}

// lockCheck is appended to the read of the check value in a write
// transaction. On PostgreSQL a Put takes the row in share mode and a
// Rotate exclusively, so a Put waits for a rotation in progress and then
// sees its new check value; SQLite's write transactions are serial anyway.
func (s *Store) lockCheck(exclusive bool) string {
	switch {
	case !s.pg:
		return ""
	case exclusive:
		return " FOR UPDATE"
	}
	return " FOR SHARE"
}

// Put stores new wrapped keys, all or none, when the key store's check
// value is still check: the value the caller verified its master key
// against, so that every key in the store stays wrapped under one master
// key even while a rotation runs (else ErrCheckChanged). A nil check
// stands for a key store without one.
func (s *Store) Put(ctx context.Context, check []byte, keys []seal.WrappedKey) (err error) {
	defer safe(&err)
	return s.inTx(ctx, func(tx *sql.Tx) error {
		stored, err := s.check(ctx, tx, s.lockCheck(false))
		if err != nil {
			return err
		}
		if !bytes.Equal(stored, check) {
			return ErrCheckChanged
		}
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, s.dialect.Bind(`INSERT INTO customer_keys (customer_id, purpose, version, wrapped) VALUES (?, ?, ?, ?)`),
				k.CustomerID, k.Purpose, k.Version, k.Wrapped); err != nil {
				return err
			}
		}
		return nil
	})
}

// Rotation is the work of a master key rotation, run by Rotate inside its
// transaction: given the stored check value and every wrapped key, it
// returns the new check value and the keys to overwrite (those it leaves
// out stay as they are).
type Rotation func(check []byte, keys []seal.WrappedKey) (newCheck []byte, rewrapped []seal.WrappedKey, err error)

// Rotate rewraps the key store in one transaction: it reads the check value
// and every key, lets fn rewrap them, and writes the keys and the new check
// value together, so that no reader ever sees keys under one master key and
// a check value of another, and no key added meanwhile is left behind.
// Then it purges the replaced keys from the files.
func (s *Store) Rotate(ctx context.Context, fn Rotation) (err error) {
	defer safe(&err)
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		check, err := s.check(ctx, tx, s.lockCheck(true))
		if err != nil {
			return err
		}
		all, err := s.queryIn(ctx, tx, `SELECT customer_id, purpose, version, wrapped FROM customer_keys ORDER BY customer_id, purpose, version`)
		if err != nil {
			return err
		}
		newCheck, rewrapped, err := fn(check, all)
		if err != nil {
			return err
		}
		for _, k := range rewrapped {
			r, err := tx.ExecContext(ctx, s.dialect.Bind(`UPDATE customer_keys SET wrapped = ? WHERE customer_id = ? AND purpose = ? AND version = ?`),
				k.Wrapped, k.CustomerID, k.Purpose, k.Version)
			if err != nil {
				return err
			}
			if n, err := r.RowsAffected(); err != nil || n != 1 {
				return fmt.Errorf("keystore: replacing a key that is not there (%v)", err)
			}
		}
		_, err = tx.ExecContext(ctx, s.dialect.Bind(`INSERT INTO master_key_check (id, check_value) VALUES (1, ?)
			ON CONFLICT (id) DO UPDATE SET check_value = excluded.check_value`), newCheck)
		return err
	})
	if err != nil {
		return err
	}
	return s.purge(ctx)
}

// CustomerKeys returns a customer's wrapped keys (seal.KeySource).
func (s *Store) CustomerKeys(ctx context.Context, customerID string) (_ []seal.WrappedKey, err error) {
	defer safe(&err)
	return s.query(ctx, `SELECT customer_id, purpose, version, wrapped FROM customer_keys WHERE customer_id = ? ORDER BY purpose, version`, customerID)
}

// All returns every wrapped key.
func (s *Store) All(ctx context.Context) (_ []seal.WrappedKey, err error) {
	defer safe(&err)
	return s.query(ctx, `SELECT customer_id, purpose, version, wrapped FROM customer_keys ORDER BY customer_id, purpose, version`)
}

func (s *Store) query(ctx context.Context, q string, args ...any) ([]seal.WrappedKey, error) {
	return s.queryIn(ctx, s.db, q, args...)
}

func (s *Store) queryIn(ctx context.Context, db interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}, q string, args ...any) ([]seal.WrappedKey, error) {
	rows, err := db.QueryContext(ctx, s.dialect.Bind(q), args...)
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
func (s *Store) Destroy(ctx context.Context, customerID string) (err error) {
	defer safe(&err)
	if _, err := s.db.ExecContext(ctx, s.dialect.Bind(`DELETE FROM customer_keys WHERE customer_id = ?`), customerID); err != nil {
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
