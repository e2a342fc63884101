package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"accounts/internal/schema"
	"accounts/internal/store"
	"accounts/internal/store/sqlbuild"
)

// txn is a store.Tx on one SQLite transaction. It runs the statements
// sqlbuild writes: the fixed ones prepared (prepared.go), lists as built.
type txn struct {
	db       *DB
	tx       *sql.Tx
	prepared *preparedSet
	// versions are the list versions this transaction has bumped, by table:
	// one bump per table per transaction.
	versions map[string]int64
}

// bump raises the customer's list version of a table, once per
// transaction, and returns the version the transaction's writes carry.
func (t *txn) bump(ctx context.Context, customerID, table string) (int64, error) {
	if v, ok := t.versions[table]; ok {
		return v, nil
	}
	var v int64
	err := t.queryRow(ctx, t.db.build.BumpVersion(customerID, table)).Scan(&v)
	if isForeignKey(err) {
		// The version row's one reference: the write is for an unknown
		// customer.
		return 0, &store.ReferenceViolation{Column: "customer_id"}
	}
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
	s, err := t.db.build.Table(res)
	if err != nil {
		return 0, err
	}
	var v int64
	err = t.queryRow(ctx, t.db.build.Version(customerID, s.Name())).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, err
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
	return t.classifyWrite(ctx, err, customerID, s, row)
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
	r, err := t.exec(ctx, stmt)
	if err != nil {
		return t.classifyWrite(ctx, err, customerID, s, row)
	}
	return oneRow(r)
}

// classifyWrite classifies the error of a write of row. SQLite reports a
// foreign key violation without naming the key, so the reference that is
// missing is looked up: the customer first, then each reference of the
// row (PostgreSQL names the constraint, and checks the customer's first).
func (t *txn) classifyWrite(ctx context.Context, err error, customerID string, s *sqlbuild.Table, row store.Row) error {
	if !isForeignKey(err) {
		return classify(err)
	}
	found := func(stmt sqlbuild.Stmt) (bool, error) {
		var one int
		err := t.tx.QueryRowContext(ctx, stmt.SQL, stmt.Args...).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		return err == nil, err
	}
	ok, ferr := found(t.db.build.CustomerExists(customerID))
	if ferr != nil || !ok {
		return errors.Join(ferr, &store.ReferenceViolation{Column: "customer_id"})
	}
	for _, r := range s.References(row) {
		ok, ferr := found(r.Target.Exists(customerID, r.ID))
		if ferr != nil || !ok {
			return errors.Join(ferr, &store.ReferenceViolation{Column: r.Column})
		}
	}
	return err
}

func (t *txn) Delete(ctx context.Context, customerID string, res *schema.Resource, id string) error {
	s, err := t.db.build.Table(res)
	if err != nil {
		return err
	}
	if _, err := t.bump(ctx, customerID, s.Name()); err != nil {
		return err
	}
	r, err := t.exec(ctx, s.Delete(customerID, id))
	if err != nil {
		return classify(err)
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
	s, err := t.db.build.Table(res)
	if err != nil {
		return store.Row{}, err
	}
	row, err := s.Scan(t.queryRow(ctx, s.Get(customerID, id)))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Row{}, store.ErrNotFound
	}
	return row, err
}

func (t *txn) Exists(ctx context.Context, customerID string, res *schema.Resource, id string) (bool, error) {
	s, err := t.db.build.Table(res)
	if err != nil {
		return false, err
	}
	var one int
	err = t.queryRow(ctx, s.Exists(customerID, id)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
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
	rows, err := t.query(ctx, stmt)
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
	return classify(err)
}
