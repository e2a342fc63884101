// Package sqltx is store.Tx written once, for both engines: each method
// takes its statements from sqlbuild and runs them on the Conn an engine
// gives, which executes them with the engine's driver and classifies its
// errors. So the engines keep only what truly differs: how a statement
// runs (SQLite's statements prepared at open, pgx's cache), their error
// codes, and appending to the audit trail, whose head rows each engine
// serializes its own way (the engines embed *Tx and add AppendAudit).
package sqltx

import (
	"context"
	"errors"
	"maps"

	"accounts/internal/schema"
	"accounts/internal/store"
	"accounts/internal/store/sqlbuild"
)

// Conn is one transaction of an engine. Its errors are classified: a
// unique violation is a *store.UniqueViolation, a foreign key violation a
// *store.ReferenceViolation (with an empty Column when the engine can't
// tell which key: then the transaction must stay usable, as SQLite's
// does, for Tx to find out), and no error quotes a value.
type Conn interface {
	// Exec runs a statement and returns the number of rows it changed.
	Exec(ctx context.Context, s sqlbuild.Stmt) (int64, error)
	// QueryRow runs a query for at most one row; its Scan returns
	// store.ErrNotFound when there is none.
	QueryRow(ctx context.Context, s sqlbuild.Stmt) sqlbuild.Scanner
	// Query calls fn with each row of a query, in order, and returns fn's
	// first error as it is.
	Query(ctx context.Context, s sqlbuild.Stmt, fn func(sqlbuild.Scanner) error) error
}

// Tx is store.Tx but for AppendAudit, on a Conn.
type Tx struct {
	conn  Conn
	build *sqlbuild.Builder
	// versions are the list versions this transaction has bumped, by table:
	// one bump per table per transaction.
	versions map[string]int64
}

// New is a transaction running build's statements on conn.
func New(conn Conn, build *sqlbuild.Builder) *Tx { return &Tx{conn: conn, build: build} }

// write looks up res's statements and bumps the customer's list version of
// its table, once per transaction: it returns the version the
// transaction's writes carry.
func (t *Tx) write(ctx context.Context, customerID string, res *schema.Resource) (*sqlbuild.Table, int64, error) {
	s, err := t.build.Table(res)
	if err != nil {
		return nil, 0, err
	}
	if v, ok := t.versions[s.Name()]; ok {
		return s, v, nil
	}
	var v int64
	if err := t.conn.QueryRow(ctx, t.build.BumpVersion(customerID, s.Name())).Scan(&v); err != nil {
		return nil, 0, t.reference(ctx, err, customerID, nil, store.Row{})
	}
	if t.versions == nil {
		t.versions = map[string]int64{}
	}
	t.versions[s.Name()] = v
	return s, v, nil
}

// reference names the column of a foreign key violation the engine could
// not name (SQLite does not say which key failed): the customer's when the
// customer is unknown, as PostgreSQL checks it first, else the first of
// row's references (of table s) whose target the customer does not have.
// Any other error is returned as it is.
func (t *Tx) reference(ctx context.Context, err error, customerID string, s *sqlbuild.Table, row store.Row) error {
	var rv *store.ReferenceViolation
	if !errors.As(err, &rv) || rv.Column != "" {
		return err
	}
	missing := func(stmt sqlbuild.Stmt) (bool, error) {
		var one int
		err := t.conn.QueryRow(ctx, stmt).Scan(&one)
		if errors.Is(err, store.ErrNotFound) {
			return true, nil
		}
		return false, err
	}
	gone, perr := missing(t.build.CustomerExists(customerID))
	switch {
	case perr != nil:
		return errors.Join(err, perr)
	case gone:
		return &store.ReferenceViolation{Column: "customer_id"}
	case s == nil:
		return err
	}
	for _, r := range s.References(row) {
		gone, perr := missing(r.Target.Exists(customerID, r.ID))
		switch {
		case perr != nil:
			return errors.Join(err, perr)
		case gone:
			return &store.ReferenceViolation{Column: r.Column}
		}
	}
	return err
}

// Version returns the customer's list version of res (0 before any write).
func (t *Tx) Version(ctx context.Context, customerID string, res *schema.Resource) (int64, error) {
	s, err := t.build.Table(res)
	if err != nil {
		return 0, err
	}
	var v int64
	err = t.conn.QueryRow(ctx, t.build.Version(customerID, s.Name())).Scan(&v)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	return v, err
}

// Insert stores a new row.
func (t *Tx) Insert(ctx context.Context, customerID string, res *schema.Resource, row store.Row) error {
	_, err := t.writeRow(ctx, customerID, res, row, (*sqlbuild.Table).Insert)
	return err
}

// Update replaces a row's clear columns and sealed value.
func (t *Tx) Update(ctx context.Context, customerID string, res *schema.Resource, row store.Row) error {
	n, err := t.writeRow(ctx, customerID, res, row, (*sqlbuild.Table).Update)
	if err != nil {
		return err
	}
	return oneRow(n)
}

// writeRow runs the statement stmt writes for row, stamped with the
// transaction's list version, and returns the rows it changed.
func (t *Tx) writeRow(ctx context.Context, customerID string, res *schema.Resource, row store.Row,
	stmt func(*sqlbuild.Table, string, int64, store.Row) (sqlbuild.Stmt, error)) (int64, error) {
	s, seq, err := t.write(ctx, customerID, res)
	if err != nil {
		return 0, err
	}
	st, err := stmt(s, customerID, seq, row)
	if err != nil {
		return 0, err
	}
	n, err := t.conn.Exec(ctx, st)
	return n, t.reference(ctx, err, customerID, s, row)
}

// Delete deletes a row.
func (t *Tx) Delete(ctx context.Context, customerID string, res *schema.Resource, id string) error {
	s, _, err := t.write(ctx, customerID, res)
	if err != nil {
		return err
	}
	n, err := t.conn.Exec(ctx, s.Delete(customerID, id))
	if err != nil {
		return err
	}
	return oneRow(n)
}

func oneRow(n int64) error {
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// Get returns a row.
func (t *Tx) Get(ctx context.Context, customerID string, res *schema.Resource, id string) (store.Row, error) {
	s, err := t.build.Table(res)
	if err != nil {
		return store.Row{}, err
	}
	return s.Scan(t.conn.QueryRow(ctx, s.Get(customerID, id)))
}

// Exists reports whether the customer has a row of that id.
func (t *Tx) Exists(ctx context.Context, customerID string, res *schema.Resource, id string) (bool, error) {
	s, err := t.build.Table(res)
	if err != nil {
		return false, err
	}
	var one int
	err = t.conn.QueryRow(ctx, s.Exists(customerID, id)).Scan(&one)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Referencing lists the ids of res rows whose field f references target.
func (t *Tx) Referencing(ctx context.Context, customerID string, res *schema.Resource, f *schema.Field, target string) ([]string, error) {
	s, err := t.build.Table(res)
	if err != nil {
		return nil, err
	}
	stmt, err := s.Referencing(customerID, f, target)
	if err != nil {
		return nil, err
	}
	var ids []string
	err = t.conn.Query(ctx, stmt, func(r sqlbuild.Scanner) error {
		var id string
		if err := r.Scan(&id); err != nil {
			return err
		}
		ids = append(ids, id)
		return nil
	})
	return ids, err
}

// ClearReferences sets field f to null on every res row that references
// target.
func (t *Tx) ClearReferences(ctx context.Context, customerID string, res *schema.Resource, f *schema.Field, target string) error {
	s, seq, err := t.write(ctx, customerID, res)
	if err != nil {
		return err
	}
	stmt, err := s.ClearReferences(customerID, f, seq, target)
	if err != nil {
		return err
	}
	_, err = t.conn.Exec(ctx, stmt)
	return err
}

// List calls fn with each row the spec selects, in order.
func (t *Tx) List(ctx context.Context, customerID string, res *schema.Resource, spec store.ListSpec, fn func(store.Row) error) error {
	s, err := t.build.Table(res)
	if err != nil {
		return err
	}
	stmt, err := s.List(customerID, spec)
	if err != nil {
		return err
	}
	return t.conn.Query(ctx, stmt, func(r sqlbuild.Scanner) error {
		row, err := s.Scan(r)
		if err != nil {
			return err
		}
		return fn(row)
	})
}

// Count counts the rows the conditions select.
func (t *Tx) Count(ctx context.Context, customerID string, res *schema.Resource, where []store.Condition) (int, error) {
	s, err := t.build.Table(res)
	if err != nil {
		return 0, err
	}
	stmt, err := s.Count(customerID, where)
	if err != nil {
		return 0, err
	}
	var n int
	err = t.conn.QueryRow(ctx, stmt).Scan(&n)
	return n, err
}

// Savepoint runs fn inside SAVEPOINT, rolling back to it when fn fails.
// An error inside fn aborts a PostgreSQL transaction; rolling back to the
// savepoint makes it usable again. The list versions bumped inside fn are
// rolled back with it, so they are forgotten too: the next write bumps
// again.
func (t *Tx) Savepoint(ctx context.Context, fn func() error) error {
	if _, err := t.conn.Exec(ctx, sqlbuild.Stmt{SQL: sqlbuild.Savepoint}); err != nil {
		return err
	}
	versions := maps.Clone(t.versions)
	if err := fn(); err != nil {
		if _, rbErr := t.conn.Exec(ctx, sqlbuild.Stmt{SQL: sqlbuild.RollbackTo}); rbErr != nil {
			return rbErr
		}
		t.versions = versions
		t.conn.Exec(ctx, sqlbuild.Stmt{SQL: sqlbuild.ReleaseSavepoint})
		return err
	}
	_, err := t.conn.Exec(ctx, sqlbuild.Stmt{SQL: sqlbuild.ReleaseSavepoint})
	return err
}
