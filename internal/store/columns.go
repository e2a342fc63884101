package store

import (
	"accounts/internal/schema"
	"accounts/internal/store/dialect"
)

// Column is one clear column of a resource's table, besides customer_id, id,
// created_at and sealed, which every table has.
type Column struct {
	Name  string
	Field *schema.Field
	// Index is true for a blind-index column (a keyed hash of a personal field).
	Index bool
}

// Columns lists a resource's clear columns in declaration order: one per
// non-personal field, one per blind index. Only these names, taken from the
// declarations, ever reach SQL.
func Columns(res *schema.Resource) []Column {
	var cols []Column
	for _, f := range res.Fields {
		switch {
		case !f.Personal:
			cols = append(cols, Column{Name: f.Column(), Field: f})
		case f.BlindIndexed:
			cols = append(cols, Column{Name: f.IndexColumn(), Field: f, Index: true})
		}
	}
	return cols
}

// TimeLayout is how created_at is written as text (and stored, on SQLite):
// UTC, fixed width, so that it sorts as text, with the microsecond
// precision the API returns.
const TimeLayout = dialect.TimeLayout
