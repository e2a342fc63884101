package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"accounts/internal/schema"
	"accounts/internal/store"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// statements are one resource's SQL, built once from its declaration. pgx
// prepares each statement once per connection and keeps it (its default
// statement cache), so fixed statements are parsed once per connection.
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
	// kinds are the Go types of the columns a list may filter and order
	// on: the only column names that reach list SQL.
	kinds map[string]kind
}

// kind is the Go type of a column's values in the stored form.
type kind int

const (
	textKind  kind = iota // string
	boolKind              // bool
	bytesKind             // []byte
	timeKind              // created_at: string in store.TimeLayout in conditions
)

func columnKind(c store.Column) kind {
	switch {
	case c.Index:
		return bytesKind
	case c.Field.Type == schema.Bool:
		return boolKind
	}
	return textKind
}

// check reports whether v (nil or of k's type) may be bound to a column of
// kind k. A mismatch is reported without the value: pgx's own encoding
// error would quote it.
func (k kind) check(column string, v any) error {
	ok := v == nil
	switch v.(type) {
	case string:
		ok = k == textKind || k == timeKind
	case bool:
		ok = k == boolKind
	case []byte:
		ok = k == bytesKind
	}
	if !ok {
		return fmt.Errorf("postgres: a value of column %s has the wrong type %T", column, v)
	}
	return nil
}

func buildStatements(res *schema.Resource) statements {
	cols := store.Columns(res)
	names := make([]string, len(cols))
	sets := make([]string, len(cols)+1)
	values := make([]string, len(cols)+1)
	for i, c := range cols {
		names[i] = c.Name
		// $1 is seq in the update.
		sets[i] = fmt.Sprintf("%s = $%d", c.Name, i+2)
		// $1..$4 are customer_id, id, created_at, seq in the insert.
		values[i] = fmt.Sprintf("$%d", i+5)
	}
	n := len(cols)
	sets[n] = fmt.Sprintf("sealed = $%d", n+2)
	values[n] = fmt.Sprintf("$%d", n+5)
	list := strings.Join(append(names, "sealed"), ", ")
	s := statements{
		resource:   res.Name,
		table:      res.Table,
		selectList: "id, created_at, " + list,
		cols:       cols,
		insert: fmt.Sprintf("INSERT INTO %s (customer_id, id, created_at, seq, %s) VALUES ($1, $2, $3, $4, %s)",
			res.Table, list, strings.Join(values, ", ")),
		get: fmt.Sprintf("SELECT id, created_at, %s FROM %s WHERE customer_id = $1 AND id = $2", list, res.Table),
		update: fmt.Sprintf("UPDATE %s SET seq = $1, %s WHERE customer_id = $%d AND id = $%d",
			res.Table, strings.Join(sets, ", "), n+3, n+4),
		delete: fmt.Sprintf("DELETE FROM %s WHERE customer_id = $1 AND id = $2", res.Table),
		exists: fmt.Sprintf("SELECT 1 FROM %s WHERE customer_id = $1 AND id = $2", res.Table),
		refs:   map[string]string{},
		clear:  map[string]string{},
		kinds:  map[string]kind{schema.IDField.Name: textKind, schema.CreatedAtField.Name: timeKind},
	}
	for _, c := range cols {
		s.kinds[c.Name] = columnKind(c)
	}
	for _, f := range res.Fields {
		if f.Type == schema.Ref {
			s.refs[f.Name] = fmt.Sprintf("SELECT id FROM %s WHERE customer_id = $1 AND %s = $2 ORDER BY id", res.Table, f.Column())
			s.clear[f.Name] = fmt.Sprintf("UPDATE %s SET %s = NULL, seq = $1 WHERE customer_id = $2 AND %s = $3", res.Table, f.Column(), f.Column())
		}
	}
	return s
}

// txn is a store.Tx on one PostgreSQL transaction.
type txn struct {
	db *DB
	tx pgx.Tx
	// versions are the list versions this transaction has bumped, by table:
	// one bump per table per transaction.
	versions map[string]int64
}

// Fixed statements besides each resource's own.
const (
	bumpVersion = `INSERT INTO list_versions (customer_id, table_name, version) VALUES ($1, $2, 1)
		ON CONFLICT (customer_id, table_name) DO UPDATE SET version = list_versions.version + 1 RETURNING version`
	selectVersion    = `SELECT version FROM list_versions WHERE customer_id = $1 AND table_name = $2`
	savepoint        = "SAVEPOINT item"
	rollbackTo       = "ROLLBACK TO SAVEPOINT item"
	releaseSavepoint = "RELEASE SAVEPOINT item"
)

// statements returns res's statements, which exist for the resources of
// the catalog the store was opened with.
func (t *txn) statements(res *schema.Resource) (statements, error) {
	s, ok := t.db.stmts[res]
	if !ok {
		return s, fmt.Errorf("postgres: resource %s is not of the catalog the store was opened with", res.Name)
	}
	return s, nil
}

// bump raises the customer's list version of a table, once per
// transaction, and returns the version the transaction's writes carry.
func (t *txn) bump(ctx context.Context, customerID, table string) (int64, error) {
	if v, ok := t.versions[table]; ok {
		return v, nil
	}
	var v int64
	if err := t.tx.QueryRow(ctx, bumpVersion, customerID, table).Scan(&v); err != nil {
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
	var v int64
	err := t.tx.QueryRow(ctx, selectVersion, customerID, res.Table).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return v, sanitize(err)
}

// args returns the clear columns' values and the sealed value of row.
func (s statements) args(row store.Row) ([]any, error) {
	out := make([]any, 0, len(s.cols)+1)
	for _, c := range s.cols {
		v := row.Plain[c.Name]
		if err := s.kinds[c.Name].check(c.Name, v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return append(out, row.Sealed), nil
}

// dbTime is a time as stored: UTC, with the microsecond precision the
// column keeps (truncated, as the SQLite store's text form truncates).
func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func (t *txn) Insert(ctx context.Context, customerID string, res *schema.Resource, row store.Row) error {
	s, err := t.statements(res)
	if err != nil {
		return err
	}
	values, err := s.args(row)
	if err != nil {
		return err
	}
	seq, err := t.bump(ctx, customerID, res.Table)
	if err != nil {
		return err
	}
	args := append([]any{customerID, row.ID, dbTime(row.CreatedAt), seq}, values...)
	_, err = t.tx.Exec(ctx, s.insert, args...)
	return t.db.classify(err)
}

func (t *txn) Update(ctx context.Context, customerID string, res *schema.Resource, row store.Row) error {
	s, err := t.statements(res)
	if err != nil {
		return err
	}
	values, err := s.args(row)
	if err != nil {
		return err
	}
	seq, err := t.bump(ctx, customerID, res.Table)
	if err != nil {
		return err
	}
	args := append(append([]any{seq}, values...), customerID, row.ID)
	tag, err := t.tx.Exec(ctx, s.update, args...)
	if err != nil {
		return t.db.classify(err)
	}
	return oneRow(tag)
}

func (t *txn) Delete(ctx context.Context, customerID string, res *schema.Resource, id string) error {
	s, err := t.statements(res)
	if err != nil {
		return err
	}
	if _, err := t.bump(ctx, customerID, res.Table); err != nil {
		return err
	}
	tag, err := t.tx.Exec(ctx, s.delete, customerID, id)
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
	s, err := t.statements(res)
	if err != nil {
		return store.Row{}, err
	}
	row, err := s.scan(t.tx.QueryRow(ctx, s.get, customerID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Row{}, store.ErrNotFound
	}
	return row, sanitize(err)
}

// scan reads one row selected with s.selectList. Clear columns scan into
// any, which pgx fills with string (text), bool (boolean), []byte (bytea)
// or nil: the Go types the SQLite store returns.
func (s statements) scan(src pgx.Row) (store.Row, error) {
	dest := make([]any, len(s.cols)+3)
	row := store.Row{Plain: make(map[string]any, len(s.cols))}
	vals := make([]any, len(s.cols))
	dest[0], dest[1] = &row.ID, &row.CreatedAt
	for i := range s.cols {
		dest[2+i] = &vals[i]
	}
	dest[len(dest)-1] = &row.Sealed
	if err := src.Scan(dest...); err != nil {
		return store.Row{}, err
	}
	row.CreatedAt = row.CreatedAt.UTC()
	for i, c := range s.cols {
		row.Plain[c.Name] = vals[i]
	}
	return row, nil
}

func (t *txn) Exists(ctx context.Context, customerID string, res *schema.Resource, id string) (bool, error) {
	s, err := t.statements(res)
	if err != nil {
		return false, err
	}
	var one int
	err = t.tx.QueryRow(ctx, s.exists, customerID, id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, sanitize(err)
}

func (t *txn) Referencing(ctx context.Context, customerID string, res *schema.Resource, f *schema.Field, target string) ([]string, error) {
	s, err := t.statements(res)
	if err != nil {
		return nil, err
	}
	q, ok := s.refs[f.Name]
	if !ok {
		return nil, fmt.Errorf("postgres: %s.%s is not a reference", res.Name, f.Name)
	}
	rows, err := t.tx.Query(ctx, q, customerID, target)
	if err != nil {
		return nil, sanitize(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, sanitize(err)
		}
		ids = append(ids, id)
	}
	return ids, sanitize(rows.Err())
}

func (t *txn) ClearReferences(ctx context.Context, customerID string, res *schema.Resource, f *schema.Field, target string) error {
	s, err := t.statements(res)
	if err != nil {
		return err
	}
	q, ok := s.clear[f.Name]
	if !ok {
		return fmt.Errorf("postgres: %s.%s is not a reference", res.Name, f.Name)
	}
	seq, err := t.bump(ctx, customerID, res.Table)
	if err != nil {
		return err
	}
	_, err = t.tx.Exec(ctx, q, seq, customerID, target)
	return t.db.classify(err)
}

// Savepoint runs fn inside SAVEPOINT, rolling back to it when fn fails. An
// error inside fn aborts a PostgreSQL transaction; rolling back to the
// savepoint makes it usable again. The list versions bumped inside fn are
// rolled back with it, so they are forgotten too: the next write bumps
// again.
func (t *txn) Savepoint(ctx context.Context, fn func() error) error {
	if _, err := t.tx.Exec(ctx, savepoint); err != nil {
		return sanitize(err)
	}
	versions := maps.Clone(t.versions)
	if err := fn(); err != nil {
		if _, rbErr := t.tx.Exec(ctx, rollbackTo); rbErr != nil {
			return sanitize(rbErr)
		}
		t.versions = versions
		t.tx.Exec(ctx, releaseSavepoint)
		return err
	}
	_, err := t.tx.Exec(ctx, releaseSavepoint)
	return sanitize(err)
}
