package sqlbuild

import (
	"accounts/internal/schema"
	"accounts/internal/store"
	"accounts/internal/store/dialect"
)

// TokensColumn is the column of a search-indexed resource's tokens (on
// SQLite, their number: the tokens are in the FTS5 index only). Its
// name carries the tokens' format (searchindex.Format): a new format is a
// new column, so that a process of an earlier version, still running
// beside this one, fails to write rather than writing tokens of a format
// this one's lookups would not find.
const TokensColumn = "search_tokens_v3"

// TableColumn is one column of a table: its name, its type as the dialect
// spells it (lower case), and whether it is NOT NULL.
type TableColumn struct {
	Name    string
	Type    string
	NotNull bool
}

// Declared lists the columns res's table must have for its statements, as
// the declaration implies them, in the builder's dialect: customer_id, id,
// created_at, seq, the clear columns (a required field's and a bool's not
// null), sealed (not null when the resource has personal fields), and a
// search-indexed resource's tokens (on SQLite, their number, with the
// row number its FTS5 index finds rows by).
// Migrations are written by hand per engine; the conformance suite checks
// each live table against this list.
func (b *Builder) Declared(res *schema.Resource) []TableColumn {
	col := func(name string, k dialect.Kind, notNull bool) TableColumn {
		return TableColumn{Name: name, Type: b.d.TypeName(k), NotNull: notNull}
	}
	out := []TableColumn{
		col("customer_id", dialect.Text, true),
		col("id", dialect.Text, true),
		col("created_at", dialect.Time, true),
		col("seq", dialect.Int, true),
	}
	for _, c := range store.Columns(res) {
		out = append(out, col(c.Name, kindOf(c), !c.Index && !c.Field.Nullable()))
	}
	out = append(out, col("sealed", dialect.Bytes, len(res.PersonalFields()) > 0))
	if res.SearchIndexed() {
		// Null in rows written before the resource was indexed.
		out = append(out, col(TokensColumn, dialect.Tokens, false))
		if b.d.FTSTokens() {
			out = append(out, col("search_row", dialect.Int, false))
		}
	}
	return out
}

// Columns selects a table's columns as the live database has them, for
// ScanTableColumn.
func (b *Builder) Columns(table string) Stmt { return Stmt{b.d.ColumnsQuery(), []any{table}} }

// ScanTableColumn reads one column selected by Columns.
func ScanTableColumn(src Scanner) (TableColumn, error) {
	var c TableColumn
	err := src.Scan(&c.Name, &c.Type, &c.NotNull)
	return c, err
}
