// Package sqlbuild writes every statement the two stores run, once: the
// statements of each resource from its declaration (schema.Resource), and
// the fixed ones (list versions, savepoints, the audit trail, customers
// and clients). They are written with ? placeholders in the text both
// engines take; a dialect.Dialect spells the few differences (placeholders,
// the LIMIT that means none, how times and lists are bound).
//
// The stores execute the statements, each with its own driver, and keep
// what truly differs: transactions, error classification, and the rows
// that serialize writers (list versions, audit heads). So a statement is
// written once and cannot drift between the engines, while each engine's
// methods still read top to bottom as what they run (ardanlabs/service
// productbus/stores: "share helpers, not function bodies").
//
// Only names taken from the declarations ever reach SQL, and every value
// is a bound parameter, checked against its column's kind first: a list
// on an unknown column, an unknown operator or a value of the wrong type
// is an error, never a panic or a quoted value.
package sqlbuild

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"accounts/internal/schema"
	"accounts/internal/store"
	"accounts/internal/store/dialect"
)

// Stmt is a statement ready to run: its text in the dialect's spelling and
// its arguments in placeholder order.
type Stmt struct {
	SQL  string
	Args []any
}

// Scanner is one result row as both drivers hand it out (*sql.Row,
// *sql.Rows, pgx.Row, pgx.Rows).
type Scanner interface{ Scan(dest ...any) error }

// Builder writes the statements of one catalog in one dialect. It is built
// once, when a store opens, and is safe for concurrent use.
type Builder struct {
	d      dialect.Dialect
	tables map[*schema.Resource]*Table
	fixed  fixedStatements
}

// New writes the fixed statements of catalog's resources in dialect d.
func New(catalog *schema.Catalog, d dialect.Dialect) *Builder {
	b := &Builder{d: d, tables: map[*schema.Resource]*Table{}, fixed: newFixed(d)}
	for _, res := range catalog.Resources {
		b.tables[res] = newTable(res, d)
	}
	for _, t := range b.tables {
		for _, f := range t.res.Fields {
			if f.Type == schema.Ref {
				t.targets[f.Name] = b.tables[catalog.Resource(f.Target)]
			}
		}
	}
	return b
}

// Table returns res's statements. A resource the builder was not made with
// is an error: its names would not be allow-listed.
func (b *Builder) Table(res *schema.Resource) (*Table, error) {
	t, ok := b.tables[res]
	if !ok {
		name := "<nil>"
		if res != nil {
			name = res.Name
		}
		return nil, fmt.Errorf("sqlbuild: resource %s is not of the catalog the store was opened with", name)
	}
	return t, nil
}

// Fixed lists the text of every statement that does not depend on the
// call (each resource's insert, get, update, delete, exists, referencing
// and clearing statements; list versions, savepoints, the audit head),
// so that a store can prepare them when it opens. List and count
// statements, whose text depends on the filters, are not among them, nor
// the audit inserts (AuditInserts).
func (b *Builder) Fixed() []string {
	out := []string{b.fixed.bumpVersion, b.fixed.selectVersion, Savepoint, RollbackTo, ReleaseSavepoint,
		b.fixed.auditHead}
	for _, t := range b.tables {
		out = append(out, t.insert, t.get, t.update, t.delete, t.exists, t.stamp)
		if t.indexTokens != "" {
			out = append(out, t.indexTokens)
		}
		for _, q := range t.refs {
			out = append(out, q)
		}
		for _, q := range t.clear {
			out = append(out, q)
		}
	}
	return out
}

// AuditInserts lists the text of InsertAuditEntries's statements, one per
// number of entries up to AuditEntriesPerInsert, apart from Fixed: only the
// connection that links audit entries needs them prepared, and prepared
// they take a few MiB of SQLite's memory on each connection.
func (b *Builder) AuditInserts() []string { return slices.Clone(b.fixed.insertAuditEntries) }

// kindOf is the kind of a clear column's values.
func kindOf(c store.Column) dialect.Kind {
	switch {
	case c.Index:
		return dialect.Bytes
	case c.Field.Type == schema.Bool:
		return dialect.Bool
	}
	return dialect.Text
}

// check reports whether v (nil, or of the Go type of kind k in the stored
// form) may be bound to column. A mismatch is reported without the value,
// which may be personal: a driver's own encoding error would quote it.
func check(column string, k dialect.Kind, v any) error {
	ok := v == nil
	switch v.(type) {
	case string:
		ok = k == dialect.Text || k == dialect.Time
	case bool:
		ok = k == dialect.Bool
	case []byte:
		ok = k == dialect.Bytes
	}
	if !ok {
		return fmt.Errorf("sqlbuild: a value for column %s has the wrong type %T", column, v)
	}
	return nil
}

// The decoders below turn a value as either driver returns it, scanned
// into an any, into the stored form the store hands out. The Go type tells
// the engines apart: SQLite returns times as text, bools as integers and
// lists as JSON text; PostgreSQL returns time.Time, bool and arrays.

// readValue decodes a clear column's value.
func readValue(k dialect.Kind, v any) any {
	if n, ok := v.(int64); ok && k == dialect.Bool {
		return n != 0
	}
	return v
}

// readTime decodes a time, in UTC.
func readTime(v any) (time.Time, error) {
	switch v := v.(type) {
	case time.Time:
		return v.UTC(), nil
	case string:
		return time.Parse(dialect.TimeLayout, v)
	}
	return time.Time{}, fmt.Errorf("sqlbuild: a time read as %T", v)
}

// readOptionalTime decodes a nullable time.
func readOptionalTime(v any) (*time.Time, error) {
	if v == nil {
		return nil, nil
	}
	t, err := readTime(v)
	return &t, err
}

var errNotList = errors.New("sqlbuild: a list is neither an array nor JSON text")
