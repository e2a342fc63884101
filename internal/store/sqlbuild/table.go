package sqlbuild

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"accounts/internal/schema"
	"accounts/internal/store"
	"accounts/internal/store/dialect"
)

// Table is one resource's statements, written once from its declaration.
// Every table has customer_id, id, created_at, seq (the list version of
// the row's last write) and sealed, besides its clear columns.
type Table struct {
	res        *schema.Resource
	d          dialect.Dialect
	cols       []store.Column
	selectList string // the columns every row query selects, for Scan
	// qualifiedSelect is selectList with the table's name on each column,
	// for a query that joins another table.
	qualifiedSelect string
	insert          string
	get             string
	// locked are get holding its row as each store.Lock says.
	locked    [3]string
	update    string
	delete    string
	exists    string
	stamp     string
	unindexed string
	// indexTokens writes rows' tokens into the FTS5 index that keeps them
	// rather than the row (SQLite), from a JSON array of [customer id,
	// id, words] (IndexTokens); empty where the tokens are in the row.
	indexTokens string
	// searched is true for a schema.Resource.SearchIndexed resource: its
	// rows carry search tokens, written with every insert and update.
	searched bool
	refs     map[string]string // field name -> select ids referencing a target
	clear    map[string]string // field name -> set the reference to null
	targets  map[string]*Table // field name -> the referenced resource's table
	// kinds are the kinds of the columns a list may filter and order on:
	// the only column names that reach list SQL.
	kinds map[string]dialect.Kind
	// notNull are those of them that are NOT NULL (see Declared).
	notNull map[string]bool
}

func newTable(res *schema.Resource, d dialect.Dialect) *Table {
	cols := store.Columns(res)
	names := make([]string, len(cols))
	sets := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
		sets[i] = c.Name + " = ?"
	}
	list := strings.Join(append(names, "sealed"), ", ")
	written, values := append(names, "sealed"), strings.Repeat(", ?", len(cols)+1)
	sets = append(sets, "sealed = ?")
	searched := res.SearchIndexed()
	if searched {
		written, values = append(written, TokensColumn), values+", ?"
		sets = append(sets, TokensColumn+" = ?")
		if d.FTSTokens() {
			// The FTS5 index finds rows by an integer that never changes
			// (a rowid may, at VACUUM): the next one, which the one writer
			// of the database takes alone.
			written = append(written, "search_row")
			values += fmt.Sprintf(", (SELECT coalesce(max(search_row), 0) + 1 FROM %s)", res.Table)
		}
	}
	var indexTokens string
	if searched && d.FTSTokens() {
		// In ascending rowid order: FTS5 gathers a statement's writes in
		// memory only while their rowids ascend (a row's delete, then its
		// insert, counts as one), and writes what it has gathered to disk
		// as a segment, to merge later, each time a rowid goes back. A
		// batch of updates, each of a row anywhere in the table, made a
		// segment of almost every row.
		indexTokens = fmt.Sprintf("INSERT OR REPLACE INTO %[1]s_search (rowid, tokens) SELECT %[1]s.search_row, w.value ->> 2 FROM json_each(?) AS w "+
			"JOIN %[1]s ON %[1]s.customer_id = w.value ->> 0 AND %[1]s.id = w.value ->> 1 ORDER BY %[1]s.search_row", res.Table)
	}
	qualified := make([]string, 0, len(names)+3)
	for _, n := range append([]string{"id", "created_at"}, append(names, "sealed")...) {
		qualified = append(qualified, res.Table+"."+n)
	}
	t := &Table{
		qualifiedSelect: strings.Join(qualified, ", "),
		res:             res,
		d:               d,
		cols:            cols,
		searched:        searched,
		selectList:      "id, created_at, " + list,
		insert: d.Bind(fmt.Sprintf("INSERT INTO %s (customer_id, id, created_at, seq, %s) VALUES (?, ?, ?, ?%s)",
			res.Table, strings.Join(written, ", "), values)),
		get: d.Bind(fmt.Sprintf("SELECT id, created_at, %s FROM %s WHERE customer_id = ? AND id = ?", list, res.Table)),
		update: d.Bind(fmt.Sprintf("UPDATE %s SET seq = ?, %s WHERE customer_id = ? AND id = ?",
			res.Table, strings.Join(sets, ", "))),
		delete:      d.Bind(fmt.Sprintf("DELETE FROM %s WHERE customer_id = ? AND id = ?", res.Table)),
		exists:      d.Bind(fmt.Sprintf("SELECT 1 FROM %s WHERE customer_id = ? AND id = ?", res.Table)),
		stamp:       d.Bind(fmt.Sprintf("UPDATE %s SET seq = ? WHERE customer_id = ? AND seq = ?", res.Table)),
		unindexed:   d.Bind(fmt.Sprintf("SELECT count(*) FROM %s WHERE customer_id = ? AND %s IS NULL", res.Table, TokensColumn)),
		indexTokens: indexTokens,
		refs:        map[string]string{},
		clear:       map[string]string{},
		targets:     map[string]*Table{},
		kinds:       map[string]dialect.Kind{schema.IDField.Name: dialect.Text, schema.CreatedAtField.Name: dialect.Time},
	}
	t.locked = [3]string{store.ForUpdate: t.get, store.Unlocked: t.get, store.ForDelete: t.get}
	if d.RowLocks() {
		// Not FOR UPDATE: an update that keeps the row's keys takes the
		// weaker FOR NO KEY UPDATE, so a foreign key's check of the row
		// (FOR KEY SHARE: a tenant created in an organization being
		// renamed) does not wait for it.
		t.locked[store.ForUpdate] = t.get + " FOR NO KEY UPDATE"
		t.locked[store.ForDelete] = t.get + " FOR UPDATE"
	}
	t.notNull = map[string]bool{schema.IDField.Name: true, schema.CreatedAtField.Name: true}
	for _, c := range cols {
		t.kinds[c.Name] = kindOf(c)
		t.notNull[c.Name] = !c.Index && !c.Field.Nullable()
	}
	for _, f := range res.Fields {
		if f.Type == schema.Ref {
			t.refs[f.Name] = d.Bind(fmt.Sprintf("SELECT id FROM %s WHERE customer_id = ? AND %s = ? ORDER BY id", res.Table, f.Column()))
			t.clear[f.Name] = d.Bind(fmt.Sprintf("UPDATE %s SET %s = NULL, seq = ? WHERE customer_id = ? AND %s = ?", res.Table, f.Column(), f.Column()))
		}
	}
	return t
}

// Name is the table's name.
func (t *Table) Name() string { return t.res.Table }

// values returns row's clear values, then its sealed value and, for a
// searched resource, its search tokens. A value whose type does not fit
// its column is an error, and so is a searched row without tokens: it
// would be missing from every lookup through them.
func (t *Table) values(row store.Row) ([]any, error) {
	out := make([]any, 0, len(t.cols)+2)
	for _, c := range t.cols {
		v := row.Plain[c.Name]
		if err := check(c.Name, t.kinds[c.Name], v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	out = append(out, row.Sealed)
	switch {
	case t.searched && row.Search == nil:
		return nil, fmt.Errorf("sqlbuild: a %s row without search tokens", t.res.Name)
	case t.searched:
		out = append(out, t.d.Tokens(row.Search))
	case row.Search != nil:
		return nil, fmt.Errorf("sqlbuild: %s rows have no search tokens", t.res.Name)
	}
	return out, nil
}

// Insert stores row for a customer, stamped with list version seq.
func (t *Table) Insert(customerID string, seq int64, row store.Row) (Stmt, error) {
	values, err := t.values(row)
	if err != nil {
		return Stmt{}, err
	}
	args := append([]any{customerID, row.ID, t.d.Time(row.CreatedAt), seq}, values...)
	return Stmt{t.insert, args}, nil
}

// Update replaces row's clear columns and sealed value (created_at stays),
// stamped with list version seq. It changes no row when the customer has
// none of that id.
func (t *Table) Update(customerID string, seq int64, row store.Row) (Stmt, error) {
	values, err := t.values(row)
	if err != nil {
		return Stmt{}, err
	}
	args := append(append([]any{seq}, values...), customerID, row.ID)
	return Stmt{t.update, args}, nil
}

// TokenWrite is the tokens of a row Insert or Update wrote, for
// IndexTokens.
type TokenWrite struct {
	CustomerID, ID string
	Search         []int64
}

// FTSIndexed reports whether the rows' tokens are kept in an FTS5 index
// that IndexTokens writes (SQLite), rather than in the row (PostgreSQL),
// where Insert and Update write them.
func (t *Table) FTSIndexed() bool { return t.indexTokens != "" }

// tokenWritesPerStatement bounds the rows of one IndexTokens statement.
const tokenWritesPerStatement = 500

// IndexTokens writes the tokens of rows, once Insert or Update has written
// them, into the FTS5 index, replacing what it held for them; each row
// once (the last write of a row in a transaction). A row deleted since
// gets none. The rows go in as few statements as tokenWritesPerStatement
// allows, all of one text (prepared once): FTS5 moves what it has
// gathered to disk at each statement, as a segment it must later merge.
func (t *Table) IndexTokens(rows []TokenWrite) ([]Stmt, error) {
	var out []Stmt
	for chunk := range slices.Chunk(rows, tokenWritesPerStatement) {
		triples := make([][3]string, len(chunk))
		for i, r := range chunk {
			triples[i] = [3]string{r.CustomerID, r.ID, dialect.TokenWords(r.Search)}
		}
		arg, err := json.Marshal(triples)
		if err != nil {
			return nil, err
		}
		out = append(out, Stmt{t.indexTokens, []any{string(arg)}})
	}
	return out, nil
}

// Stamp gives a customer's rows written with the placeholder list version
// pending the version seq (see sqltx: a transaction writes its rows with a
// placeholder and takes its version just before it commits).
func (t *Table) Stamp(customerID string, pending, seq int64) Stmt {
	return Stmt{t.stamp, []any{seq, customerID, pending}}
}

// Unindexed counts the customer's rows written before their resource was
// search-indexed (no tokens): lookups through the tokens would miss them.
func (t *Table) Unindexed(customerID string) (Stmt, error) {
	if !t.searched {
		return Stmt{}, fmt.Errorf("sqlbuild: %s rows have no search tokens", t.res.Name)
	}
	return Stmt{t.unindexed, []any{customerID}}, nil
}

// Get selects one row, for Scan.
func (t *Table) Get(customerID, id string) Stmt { return Stmt{t.get, []any{customerID, id}} }

// Locked selects one row, for Scan, holding it as lock says until the
// transaction ends.
func (t *Table) Locked(customerID, id string, lock store.Lock) Stmt {
	return Stmt{t.locked[lock], []any{customerID, id}}
}

// LockAncestry takes the customer's transaction-long lock on the table's
// acyclic links (store.Tx.LockAncestry): a PostgreSQL advisory lock keyed
// by the table and the customer. ok is false where the engine has no row
// locks (SQLite's one writer runs its transactions one at a time).
func (t *Table) LockAncestry(customerID string) (stmt Stmt, ok bool) {
	if !t.d.RowLocks() {
		return Stmt{}, false
	}
	return Stmt{t.d.Bind("SELECT pg_advisory_xact_lock(hashtext(?), hashtext(?))"), []any{t.res.Table, customerID}}, true
}

// LockRows selects the customer's rows of ids, holding each as
// store.ForUpdate until the transaction ends, their locks taken in the
// order of their ids: two transactions that lock the same rows so both
// take them in one order, and the second waits for the first instead of
// deadlocking with it. ok is false where the engine has no row locks
// (SQLite's one writer runs its transactions one at a time).
func (t *Table) LockRows(customerID string, ids []string) (stmt Stmt, ok bool) {
	if !t.d.RowLocks() || len(ids) == 0 {
		return Stmt{}, false
	}
	args := make([]any, 0, len(ids)+1)
	args = append(args, customerID)
	for _, id := range ids {
		args = append(args, id)
	}
	q := fmt.Sprintf("SELECT id FROM %s WHERE customer_id = ? AND id IN (?%s) ORDER BY id FOR NO KEY UPDATE",
		t.res.Table, strings.Repeat(", ?", len(ids)-1))
	return Stmt{t.d.Bind(q), args}, true
}

// Delete deletes one row.
func (t *Table) Delete(customerID, id string) Stmt { return Stmt{t.delete, []any{customerID, id}} }

// Exists selects 1 when the customer has a row of that id.
func (t *Table) Exists(customerID, id string) Stmt { return Stmt{t.exists, []any{customerID, id}} }

// Referencing selects, ordered, the ids of the rows whose reference f is
// target.
func (t *Table) Referencing(customerID string, f *schema.Field, target string) (Stmt, error) {
	q, err := t.ref(t.refs, f)
	return Stmt{q, []any{customerID, target}}, err
}

// ClearReferences sets reference f to null on every row whose f is
// target, stamping them with list version seq.
func (t *Table) ClearReferences(customerID string, f *schema.Field, seq int64, target string) (Stmt, error) {
	q, err := t.ref(t.clear, f)
	return Stmt{q, []any{seq, customerID, target}}, err
}

func (t *Table) ref(statements map[string]string, f *schema.Field) (string, error) {
	if f == nil || statements[f.Name] == "" || t.res.Field(f.Name) != f {
		name := "<nil>"
		if f != nil {
			name = f.Name
		}
		return "", fmt.Errorf("sqlbuild: %s.%s is not a reference of the resource", t.res.Name, name)
	}
	return statements[f.Name], nil
}

// Reference is one reference a row holds.
type Reference struct {
	Column string
	// Target is the referenced resource's table, ID the referenced row.
	Target *Table
	ID     string
}

// References lists the references row holds (those not null), in
// declaration order. A store that learns of a foreign key violation
// without learning which key (SQLite) looks for the one that is missing.
func (t *Table) References(row store.Row) []Reference {
	var out []Reference
	for _, f := range t.res.Fields {
		if id, ok := row.Plain[f.Column()].(string); ok && f.Type == schema.Ref {
			out = append(out, Reference{Column: f.Column(), Target: t.targets[f.Name], ID: id})
		}
	}
	return out
}

// Scan reads one row selected by Get or List.
func (t *Table) Scan(src Scanner) (store.Row, error) {
	dest := make([]any, len(t.cols)+3)
	var created any
	row := store.Row{Plain: make(map[string]any, len(t.cols))}
	vals := make([]any, len(t.cols))
	dest[0], dest[1] = &row.ID, &created
	for i := range t.cols {
		dest[2+i] = &vals[i]
	}
	dest[len(dest)-1] = &row.Sealed
	if err := src.Scan(dest...); err != nil {
		return store.Row{}, err
	}
	var err error
	if row.CreatedAt, err = readTime(created); err != nil {
		return store.Row{}, fmt.Errorf("sqlbuild: created_at of a %s row: %w", t.res.Name, err)
	}
	for i, c := range t.cols {
		row.Plain[c.Name] = readValue(t.kinds[c.Name], vals[i])
	}
	return row, nil
}
