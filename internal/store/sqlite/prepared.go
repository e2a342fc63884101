package sqlite

import (
	"context"
	"database/sql"
)

// preparedSet holds the fixed statements of one pool (sqlbuild's Fixed,
// and this store's own), prepared when the store opens, so the statements
// every request runs are parsed once per connection instead of once per
// call. They must be prepared up front: a write transaction holds the
// writer pool's only connection, so preparing on the pool from inside one
// would wait for itself. A transaction then binds a statement to its own
// connection (re-preparing it there once if it is a new connection). List
// queries, whose text depends on the filters, are not kept.
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

// onPool returns the prepared statement of query on the pool itself, for a
// statement run outside a transaction, or nil when query is not prepared.
func (p *preparedSet) onPool(query string) *sql.Stmt { return p.stmts[query] }

// stmt returns the prepared statement of query bound to tx, or nil when
// query is not a fixed statement.
func (p *preparedSet) stmt(ctx context.Context, tx *sql.Tx, query string) *sql.Stmt {
	s, ok := p.stmts[query]
	if !ok {
		return nil
	}
	return tx.StmtContext(ctx, s)
}
