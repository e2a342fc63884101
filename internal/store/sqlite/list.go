package sqlite

import (
	"context"
	"maps"

	"accounts/internal/schema"
	"accounts/internal/store"
	"accounts/internal/store/sqlbuild"
)

func (t *txn) List(ctx context.Context, customerID string, res *schema.Resource, spec store.ListSpec, fn func(store.Row) error) error {
	s, err := t.db.build.Table(res)
	if err != nil {
		return err
	}
	stmt, err := s.List(customerID, spec)
	if err != nil {
		return err
	}
	rows, err := t.tx.QueryContext(ctx, stmt.SQL, stmt.Args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		row, err := s.Scan(rows)
		if err != nil {
			return err
		}
		if err := fn(row); err != nil {
			return err
		}
	}
	return rows.Err()
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
	err = t.tx.QueryRowContext(ctx, stmt.SQL, stmt.Args...).Scan(&n)
	return n, err
}

// Savepoint runs fn inside SAVEPOINT, rolling back to it when fn fails.
func (t *txn) Savepoint(ctx context.Context, fn func() error) error {
	if _, err := t.exec(ctx, sqlbuild.Stmt{SQL: sqlbuild.Savepoint}); err != nil {
		return err
	}
	// A rollback also undoes version bumps made inside fn: forget them too.
	versions := maps.Clone(t.versions)
	if err := fn(); err != nil {
		if _, rbErr := t.exec(ctx, sqlbuild.Stmt{SQL: sqlbuild.RollbackTo}); rbErr != nil {
			return rbErr
		}
		t.versions = versions
		t.exec(ctx, sqlbuild.Stmt{SQL: sqlbuild.ReleaseSavepoint})
		return err
	}
	_, err := t.exec(ctx, sqlbuild.Stmt{SQL: sqlbuild.ReleaseSavepoint})
	return err
}
