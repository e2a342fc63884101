package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"accounts/internal/store/sqlbuild"
)

// preparedSet holds the fixed statements of one pool, prepared when the
// store opens, so the statements every request runs are parsed once per
// connection instead of once per call. They must be prepared up front: a
// write transaction holds the writer pool's only connection, so preparing
// on the pool from inside one would wait for itself. A transaction then
// binds a statement to its own connection (re-preparing it there once if
// it is a new connection). List queries, whose text depends on the
// filters, are not kept.
type preparedSet struct {
	stmts map[string]*sql.Stmt
}

func newPreparedSet(ctx context.Context, pool *sql.DB, queries []string) (*preparedSet, error) {
	p := &preparedSet{stmts: map[string]*sql.Stmt{}}
	for _, q := range queries {
		if _, ok := p.stmts[q]; ok {
			continue
		}
		s, err := pool.PrepareContext(ctx, q)
		if err != nil {
			p.close()
			return nil, err
		}
		p.stmts[q] = s
	}
	return p, nil
}

func (p *preparedSet) close() {
	for _, s := range p.stmts {
		s.Close()
	}
}

// stmt returns a fixed statement bound to the transaction.
func (t *txn) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	s, ok := t.prepared.stmts[query]
	if !ok {
		return nil, fmt.Errorf("sqlite: statement not prepared at open: %.40q", query)
	}
	return t.tx.StmtContext(ctx, s), nil
}

func (t *txn) exec(ctx context.Context, stmt sqlbuild.Stmt) (sql.Result, error) {
	s, err := t.stmt(ctx, stmt.SQL)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(ctx, stmt.Args...)
}

// queryRow runs a fixed single-row query; errors surface from Scan.
func (t *txn) queryRow(ctx context.Context, stmt sqlbuild.Stmt) sqlbuild.Scanner {
	s, err := t.stmt(ctx, stmt.SQL)
	if err != nil {
		return errRow{err}
	}
	return s.QueryRowContext(ctx, stmt.Args...)
}

func (t *txn) query(ctx context.Context, stmt sqlbuild.Stmt) (*sql.Rows, error) {
	s, err := t.stmt(ctx, stmt.SQL)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, stmt.Args...)
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
