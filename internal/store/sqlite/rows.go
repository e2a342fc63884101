package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"accounts/internal/schema"
	"accounts/internal/store"
)

// statements are one resource's SQL, built once from its declaration.
type statements struct {
	resource   string
	table      string
	selectList string // the columns every row query selects, for scan
	cols       []store.Column
	insert     string
	get        string
	update     string
	delete     string
	exists     string
	refs       map[string]string // field name -> select ids referencing a target
	clear      map[string]string // field name -> set the reference to null
}

func buildStatements(res *schema.Resource) statements {
	cols := store.Columns(res)
	names := make([]string, len(cols))
	sets := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
		sets[i] = c.Name + " = ?"
	}
	list := strings.Join(append(names, "sealed"), ", ")
	s := statements{
		resource:   res.Name,
		table:      res.Table,
		selectList: "id, created_at, " + list,
		cols:       cols,
		insert: fmt.Sprintf("INSERT INTO %s (customer_id, id, created_at, seq, %s) VALUES (?, ?, ?, ?%s)",
			res.Table, list, strings.Repeat(", ?", len(cols)+1)),
		get:    fmt.Sprintf("SELECT id, created_at, %s FROM %s WHERE customer_id = ? AND id = ?", list, res.Table),
		update: fmt.Sprintf("UPDATE %s SET seq = ?, %s WHERE customer_id = ? AND id = ?", res.Table, strings.Join(append(sets, "sealed = ?"), ", ")),
		delete: fmt.Sprintf("DELETE FROM %s WHERE customer_id = ? AND id = ?", res.Table),
		exists: fmt.Sprintf("SELECT 1 FROM %s WHERE customer_id = ? AND id = ?", res.Table),
		refs:   map[string]string{},
		clear:  map[string]string{},
	}
	for _, f := range res.Fields {
		if f.Type == schema.Ref {
			s.refs[f.Name] = fmt.Sprintf("SELECT id FROM %s WHERE customer_id = ? AND %s = ? ORDER BY id", res.Table, f.Column())
			s.clear[f.Name] = fmt.Sprintf("UPDATE %s SET %s = NULL, seq = ? WHERE customer_id = ? AND %s = ?", res.Table, f.Column(), f.Column())
		}
	}
	return s
}

// txn is a store.Tx on one SQLite transaction.
type txn struct {
	db       *DB
	tx       *sql.Tx
	prepared *preparedSet
	// versions are the list versions this transaction has bumped, by table:
	// one bump per table per transaction.
	versions map[string]int64
}

// Fixed statements besides each resource's own.
const (
	bumpVersion = `INSERT INTO list_versions (customer_id, table_name, version) VALUES (?, ?, 1)
		ON CONFLICT (customer_id, table_name) DO UPDATE SET version = version + 1 RETURNING version`
	selectVersion    = `SELECT version FROM list_versions WHERE customer_id = ? AND table_name = ?`
	savepoint        = "SAVEPOINT item"
	rollbackTo       = "ROLLBACK TO SAVEPOINT item"
	releaseSavepoint = "RELEASE SAVEPOINT item"
)

// queries lists every fixed statement, for preparing at open.
func (s statements) queries() []string {
	out := []string{s.insert, s.get, s.update, s.delete, s.exists}
	for _, q := range s.refs {
		out = append(out, q)
	}
	for _, q := range s.clear {
		out = append(out, q)
	}
	return out
}

// bump raises the customer's list version of a table, once per
// transaction, and returns the version the transaction's writes carry.
func (t *txn) bump(ctx context.Context, customerID, table string) (int64, error) {
	if v, ok := t.versions[table]; ok {
		return v, nil
	}
	var v int64
	err := t.queryRow(ctx, bumpVersion, customerID, table).Scan(&v)
	if err != nil {
		return 0, err
	}
	if t.versions == nil {
		t.versions = map[string]int64{}
	}
	t.versions[table] = v
	return v, nil
}

// Version returns the customer's list version of res (0 before any write).
func (t *txn) Version(ctx context.Context, customerID string, res *schema.Resource) (int64, error) {
	var v int64
	err := t.queryRow(ctx, selectVersion, customerID, res.Table).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

func (t *txn) args(s statements, row store.Row) []any {
	out := make([]any, 0, len(s.cols)+1)
	for _, c := range s.cols {
		out = append(out, toSQL(row.Plain[c.Name]))
	}
	return append(out, row.Sealed)
}

func toSQL(v any) any {
	if b, ok := v.(bool); ok {
		if b {
			return int64(1)
		}
		return int64(0)
	}
	return v
}

func (t *txn) Insert(ctx context.Context, customerID string, res *schema.Resource, row store.Row) error {
	s := t.db.stmts[res]
	seq, err := t.bump(ctx, customerID, res.Table)
	if err != nil {
		return err
	}
	args := append([]any{customerID, row.ID, row.CreatedAt.UTC().Format(store.TimeLayout), seq}, t.args(s, row)...)
	_, err = t.exec(ctx, s.insert, args...)
	return classify(err)
}

func (t *txn) Update(ctx context.Context, customerID string, res *schema.Resource, row store.Row) error {
	s := t.db.stmts[res]
	seq, err := t.bump(ctx, customerID, res.Table)
	if err != nil {
		return err
	}
	args := append(append([]any{seq}, t.args(s, row)...), customerID, row.ID)
	r, err := t.exec(ctx, s.update, args...)
	if err != nil {
		return classify(err)
	}
	return oneRow(r)
}

func (t *txn) Delete(ctx context.Context, customerID string, res *schema.Resource, id string) error {
	if _, err := t.bump(ctx, customerID, res.Table); err != nil {
		return err
	}
	r, err := t.exec(ctx, t.db.stmts[res].delete, customerID, id)
	if err != nil {
		return err
	}
	return oneRow(r)
}

func oneRow(r sql.Result) error {
	n, err := r.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

func (t *txn) Get(ctx context.Context, customerID string, res *schema.Resource, id string) (store.Row, error) {
	s := t.db.stmts[res]
	row, err := s.scan(t.queryRow(ctx, s.get, customerID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Row{}, store.ErrNotFound
	}
	return row, err
}

// scan reads one row selected with s.selectList.
func (s statements) scan(src rowScanner) (store.Row, error) {
	dest := make([]any, len(s.cols)+3)
	var created string
	row := store.Row{Plain: make(map[string]any, len(s.cols))}
	vals := make([]any, len(s.cols))
	dest[0], dest[1] = &row.ID, &created
	for i := range s.cols {
		dest[2+i] = &vals[i]
	}
	dest[len(dest)-1] = &row.Sealed
	if err := src.Scan(dest...); err != nil {
		return store.Row{}, err
	}
	var err error
	if row.CreatedAt, err = time.Parse(store.TimeLayout, created); err != nil {
		return store.Row{}, fmt.Errorf("sqlite: created_at of a %s row: %w", s.resource, err)
	}
	for i, c := range s.cols {
		row.Plain[c.Name] = fromSQL(c, vals[i])
	}
	return row, nil
}

func fromSQL(c store.Column, v any) any {
	if n, ok := v.(int64); ok && !c.Index && c.Field.Type == schema.Bool {
		return n != 0
	}
	return v
}

func (t *txn) Exists(ctx context.Context, customerID string, res *schema.Resource, id string) (bool, error) {
	var one int
	err := t.queryRow(ctx, t.db.stmts[res].exists, customerID, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func (t *txn) Referencing(ctx context.Context, customerID string, res *schema.Resource, f *schema.Field, target string) ([]string, error) {
	rows, err := t.query(ctx, t.db.stmts[res].refs[f.Name], customerID, target)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

func (t *txn) ClearReferences(ctx context.Context, customerID string, res *schema.Resource, f *schema.Field, target string) error {
	seq, err := t.bump(ctx, customerID, res.Table)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, t.db.stmts[res].clear[f.Name], seq, customerID, target)
	return err
}
