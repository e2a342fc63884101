package postgres

import (
	"context"
	"errors"
	"maps"

	"accounts/internal/schema"
	"accounts/internal/store"
	"accounts/internal/store/sqlbuild"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// txn is a store.Tx on one PostgreSQL transaction. It runs the statements
// sqlbuild writes; pgx prepares each once per connection and keeps it (its
// default statement cache), so fixed statements are parsed once per
// connection.
type txn struct {
	db *DB
	tx pgx.Tx
	// versions are the list versions this transaction has bumped, by table:
	// one bump per table per transaction.
	versions map[string]int64
}

func (t *txn) exec(ctx context.Context, stmt sqlbuild.Stmt) (pgconn.CommandTag, error) {
	return t.tx.Exec(ctx, stmt.SQL, stmt.Args...)
}

func (t *txn) queryRow(ctx context.Context, stmt sqlbuild.Stmt) pgx.Row {
	return t.tx.QueryRow(ctx, stmt.SQL, stmt.Args...)
}

// bump raises the customer's list version of a table, once per
// transaction, and returns the version the transaction's writes carry.
func (t *txn) bump(ctx context.Context, customerID, table string) (int64, error) {
	if v, ok := t.versions[table]; ok {
		return v, nil
	}
	var v int64
	if err := t.queryRow(ctx, t.db.build.BumpVersion(customerID, table)).Scan(&v); err != nil {
		return 0, t.db.classify(err)
	}
	if t.versions == nil {
		t.versions = map[string]int64{}
	}
	t.versions[table] = v
	return v, nil
}

// Version returns the customer's list version of res (0 before any write).
func (t *txn) Version(ctx context.Context, customerID string, res *schema.Resource) (int64, error) {
	s, err := t.db.build.Table(res)
	if err != nil {
		return 0, err
	}
	var v int64
	err = t.queryRow(ctx, t.db.build.Version(customerID, s.Name())).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return v, sanitize(err)
}

func (t *txn) Insert(ctx context.Context, customerID string, res *schema.Resource, row store.Row) error {
	s, err := t.db.build.Table(res)
	if err != nil {
		return err
	}
	seq, err := t.bump(ctx, customerID, s.Name())
	if err != nil {
		return err
	}
	stmt, err := s.Insert(customerID, seq, row)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, stmt)
	return t.db.classify(err)
}

func (t *txn) Update(ctx context.Context, customerID string, res *schema.Resource, row store.Row) error {
	s, err := t.db.build.Table(res)
	if err != nil {
		return err
	}
	seq, err := t.bump(ctx, customerID, s.Name())
	if err != nil {
		return err
	}
	stmt, err := s.Update(customerID, seq, row)
	if err != nil {
		return err
	}
	tag, err := t.exec(ctx, stmt)
	if err != nil {
		return t.db.classify(err)
	}
	return oneRow(tag)
}

func (t *txn) Delete(ctx context.Context, customerID string, res *schema.Resource, id string) error {
	s, err := t.db.build.Table(res)
	if err != nil {
		return err
	}
	if _, err := t.bump(ctx, customerID, s.Name()); err != nil {
		return err
	}
	tag, err := t.exec(ctx, s.Delete(customerID, id))
	if err != nil {
		return t.db.classify(err)
	}
	return oneRow(tag)
}

func oneRow(tag pgconn.CommandTag) error {
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

func (t *txn) Get(ctx context.Context, customerID string, res *schema.Resource, id string) (store.Row, error) {
	s, err := t.db.build.Table(res)
	if err != nil {
		return store.Row{}, err
	}
	row, err := s.Scan(t.queryRow(ctx, s.Get(customerID, id)))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Row{}, store.ErrNotFound
	}
	return row, sanitize(err)
}

func (t *txn) Exists(ctx context.Context, customerID string, res *schema.Resource, id string) (bool, error) {
	s, err := t.db.build.Table(res)
	if err != nil {
		return false, err
	}
	var one int
	err = t.queryRow(ctx, s.Exists(customerID, id)).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, sanitize(err)
}

func (t *txn) Referencing(ctx context.Context, customerID string, res *schema.Resource, f *schema.Field, target string) ([]string, error) {
	s, err := t.db.build.Table(res)
	if err != nil {
		return nil, err
	}
	stmt, err := s.Referencing(customerID, f, target)
	if err != nil {
		return nil, err
	}
	rows, err := t.tx.Query(ctx, stmt.SQL, stmt.Args...)
	if err != nil {
		return nil, sanitize(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return ids, sanitize(err)
}

func (t *txn) ClearReferences(ctx context.Context, customerID string, res *schema.Resource, f *schema.Field, target string) error {
	s, err := t.db.build.Table(res)
	if err != nil {
		return err
	}
	seq, err := t.bump(ctx, customerID, s.Name())
	if err != nil {
		return err
	}
	stmt, err := s.ClearReferences(customerID, f, seq, target)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, stmt)
	return t.db.classify(err)
}

func (t *txn) List(ctx context.Context, customerID string, res *schema.Resource, spec store.ListSpec, fn func(store.Row) error) error {
	s, err := t.db.build.Table(res)
	if err != nil {
		return err
	}
	stmt, err := s.List(customerID, spec)
	if err != nil {
		return err
	}
	rows, err := t.tx.Query(ctx, stmt.SQL, stmt.Args...)
	if err != nil {
		return sanitize(err)
	}
	defer rows.Close()
	for rows.Next() {
		row, err := s.Scan(rows)
		if err != nil {
			return sanitize(err)
		}
		if err := fn(row); err != nil {
			return err
		}
	}
	return sanitize(rows.Err())
}

func (t *txn) Count(ctx context.Context, customerID string, res *schema.Resource, conds []store.Condition) (int, error) {
	s, err := t.db.build.Table(res)
	if err != nil {
		return 0, err
	}
	stmt, err := s.Count(customerID, conds)
	if err != nil {
		return 0, err
	}
	var n int
	err = t.queryRow(ctx, stmt).Scan(&n)
	return n, sanitize(err)
}

// Savepoint runs fn inside SAVEPOINT, rolling back to it when fn fails. An
// error inside fn aborts a PostgreSQL transaction; rolling back to the
// savepoint makes it usable again. The list versions bumped inside fn are
// rolled back with it, so they are forgotten too: the next write bumps
// again.
func (t *txn) Savepoint(ctx context.Context, fn func() error) error {
	if _, err := t.tx.Exec(ctx, sqlbuild.Savepoint); err != nil {
		return sanitize(err)
	}
	versions := maps.Clone(t.versions)
	if err := fn(); err != nil {
		if _, rbErr := t.tx.Exec(ctx, sqlbuild.RollbackTo); rbErr != nil {
			return sanitize(rbErr)
		}
		t.versions = versions
		t.tx.Exec(ctx, sqlbuild.ReleaseSavepoint)
		return err
	}
	_, err := t.tx.Exec(ctx, sqlbuild.ReleaseSavepoint)
	return sanitize(err)
}
